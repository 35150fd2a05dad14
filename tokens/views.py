"""Console pages for tokens: list and filter, issue (show once), detail, rotate, revoke.

The full token exists only in the response to the POST that minted it. That page is never
cached, and each issue form carries a one-time nonce, so reloading the page (re-posting the form)
leads to the token's detail page instead of showing the secret again or minting a duplicate.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from core.permissions import can_manage, console_admin_required, console_reader_required
from tokens import selectors, services
from tokens.exceptions import InvalidTokenRequest, InvalidTransition, TokenNotFound
from tokens.forms import IssueTokenForm, RevokeTokenForm, RotateTokenForm, TokenFilterForm, ttl_suggestions
from tokens.models import Token
from tokens.probe import ProbeRefused, ServerProbe, probe_token
from tokens.scope import TokenScope
from tokens.snippets import connection_snippets, mcp_url
from tokens.ttl import format_ttl
from upstreams import selectors as server_selectors
from upstreams.tools import list_upstream_tools

PAGE_SIZE = 50
EXPIRING_SOON = timedelta(days=3)
_PENDING_NONCES = "tokens.issue.pending"
_USED_NONCES = "tokens.issue.used"
_MAX_NONCES = 20


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _token_or_404(token_id: int) -> Token:
    token = Token.objects.select_related("owner").filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token


@console_reader_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenFilterForm(
        request.GET or None,
        owners=selectors.token_owner_names(),
        servers=[s.name for s in server_selectors.all_servers()],
    )
    tokens = selectors.token_list(**form.filters())
    page = Paginator(tokens, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/tokens/list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "filtered": bool(form.filters() and any(form.filters().values())),
            "can_manage": can_manage(request.user),
        },
    )


# --- issue -----------------------------------------------------------------------------------


def _new_nonce(request: HttpRequest) -> str:
    nonce = secrets.token_urlsafe(16)
    pending = request.session.get(_PENDING_NONCES, [])[-(_MAX_NONCES - 1):]
    request.session[_PENDING_NONCES] = [*pending, nonce]
    return nonce


def _consume_nonce(request: HttpRequest, nonce: str, *, token_id: int) -> None:
    request.session[_PENDING_NONCES] = [n for n in request.session.get(_PENDING_NONCES, []) if n != nonce]
    used = dict(list(request.session.get(_USED_NONCES, {}).items())[-(_MAX_NONCES - 1):])
    used[nonce] = token_id
    request.session[_USED_NONCES] = used


def _show_once(
    request: HttpRequest, *, issued: services.IssuedToken, rotated_from: Token | None
) -> HttpResponse:
    token = issued.token
    transports = server_selectors.server_transports(names=list(token.server_names))
    sections = [
        {
            "server": server,
            "url": mcp_url(server=server, transport=transport),
            "snippets": connection_snippets(token=issued.secret, server=server, transport=transport),
        }
        for server, transport in transports.items()
    ]
    response = render(
        request,
        "console/tokens/issued.html",
        {
            "token": token,
            "secret": issued.secret,
            "sections": sections,
            "rotated_from": rotated_from,
            "scope": TokenScope.from_mapping(token.scope).to_mapping(),
        },
    )
    # The only page that ever contains a token: never store it in any cache, and keep it out
    # of any Referer sent by the links on it.
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    response["Pragma"] = "no-cache"
    response["Referrer-Policy"] = "no-referrer"
    return response


@console_admin_required
@require_http_methods(["GET", "POST"])
def token_issue(request: HttpRequest) -> HttpResponse:
    servers = list(server_selectors.enabled_servers())
    listings = list_upstream_tools(servers=servers)
    if request.method == "POST":
        nonce = request.POST.get("nonce", "")
        used = request.session.get(_USED_NONCES, {})
        if nonce in used:
            messages.info(
                request,
                "That form was already submitted and its token was shown once. A token is never shown "
                "again: rotate it or issue a new one if it was lost.",
            )
            return redirect("console-token-detail", token_id=used[nonce])
        form = IssueTokenForm(request.POST, servers=servers, listings=listings)
        if form.is_valid():
            if nonce not in request.session.get(_PENDING_NONCES, []):
                form.add_error(None, "This form has expired. Check the values and submit again.")
            else:
                data = form.cleaned_data
                try:
                    issued = services.issue_token(
                        name=data["name"],
                        owner=data["owner"],
                        scope=TokenScope.from_mapping(data["scope"]),
                        ttl=data["ttl"],
                        actor=_actor(request),
                        client_ip=_client_ip(request),
                    )
                except InvalidTokenRequest as exc:
                    form.add_error(None, exc.detail)
                else:
                    _consume_nonce(request, nonce, token_id=issued.token.pk)
                    return _show_once(request, issued=issued, rotated_from=None)
        resubmit = request.POST.copy()  # the form's data, immutable: re-bind it with a fresh nonce
        resubmit["nonce"] = _new_nonce(request)
        form.data = resubmit
    else:
        preselected = request.GET.get("server", "")
        initial: dict[str, object] = {
            "owner": request.user.get_username(),
            "nonce": _new_nonce(request),
            "ttl": format_ttl(settings.TOKEN_DEFAULT_TTL),
        }
        if preselected:
            initial[f"include__{preselected}"] = True
        if len(servers) == 1:
            initial[f"include__{servers[0].name}"] = True
        form = IssueTokenForm(initial=initial, servers=servers, listings=listings)
    return render(
        request,
        "console/tokens/issue.html",
        {"form": form, "servers": servers, "ttl_suggestions": ttl_suggestions()},
    )


# --- detail, rotate, revoke ------------------------------------------------------------------


@console_reader_required
def token_detail(request: HttpRequest, token_id: int) -> HttpResponse:
    return _detail_page(request, token_id)


def _detail_page(
    request: HttpRequest, token_id: int, *, probe: list[ServerProbe] | None = None, probe_error: str = ""
) -> HttpResponse:
    try:
        detail = selectors.token_detail(token_id=token_id)
    except TokenNotFound as exc:
        raise Http404("No such token.") from exc
    token = detail.token
    response = render(
        request,
        "console/tokens/detail.html",
        {
            "probe": probe,
            "probe_error": probe_error,
            "detail": detail,
            "token": token,
            "scope": sorted((token.scope or {}).items()),
            "status": token.effective_status,
            "can_manage": can_manage(request.user),
            "rotate_form": RotateTokenForm(),
            "can_rotate": token.effective_status == Token.Status.ACTIVE,
            "can_revoke": token.status in (Token.Status.ACTIVE, Token.Status.ROTATED)
            and token.effective_status != Token.Status.EXPIRED,
            "expires_soon": token.expires_at is not None
            and token.effective_status == Token.Status.ACTIVE
            and token.expires_at <= timezone.now() + EXPIRING_SOON,
        },
    )
    if probe is not None or probe_error:
        add_never_cache_headers(response)  # the answer to a pasted secret: never kept by a cache
    return response


@require_POST
@sensitive_post_parameters("secret")
@console_admin_required
def token_test(request: HttpRequest, token_id: int) -> HttpResponse:
    """Test this token: the pasted secret, through the gateway (``tokens.probe``)."""
    token = _token_or_404(token_id)
    try:
        results = probe_token(
            token=token, secret=request.POST.get("secret", ""), gateway_url=request.build_absolute_uri("/"),
            actor=_actor(request), client_ip=_client_ip(request),
        )
    except ProbeRefused as exc:
        return _detail_page(request, token.pk, probe_error=str(exc))
    return _detail_page(request, token.pk, probe=results)


@require_POST
@console_admin_required
def token_rotate(request: HttpRequest, token_id: int) -> HttpResponse:
    token = _token_or_404(token_id)
    form = RotateTokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a grace period.")
        return redirect("console-token-detail", token_id=token.pk)
    try:
        issued = services.rotate_token(
            token=token,
            actor=_actor(request),
            grace=form.cleaned_data["grace"],
            client_ip=_client_ip(request),
        )
    except (InvalidTransition, InvalidTokenRequest) as exc:
        messages.error(request, f"Not rotated: {exc.detail}")
        return redirect("console-token-detail", token_id=token.pk)
    return _show_once(request, issued=issued, rotated_from=token)


@console_admin_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = _token_or_404(token_id)
    form = RevokeTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.revoke_token(
                token=token,
                actor=_actor(request),
                reason=form.cleaned_data["reason"],
                client_ip=_client_ip(request),
            )
        except InvalidTransition as exc:
            messages.error(request, f"Not revoked: {exc.detail}")
        else:
            messages.success(
                request, f"Token {token.display_prefix} revoked. Open connections close within a second."
            )
        return redirect("console-token-detail", token_id=token.pk)
    return render(request, "console/tokens/revoke.html", {"token": token, "form": form})

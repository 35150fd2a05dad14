"""Console pages for API keys: list, create (the key shown once), revoke.

Only console sessions reach these pages (an API key is never a console credential). Reading needs
the console reader role; creating and revoking need staff.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from core.exceptions import GatehouseError
from core.permissions import can_manage, console_admin_required, console_reader_required
from tokens.api_keys.forms import ApiKeyCreateForm, ApiKeyRevokeForm
from tokens.api_keys.services import create_api_key, revoke_api_key
from tokens.exceptions import InvalidTransition
from tokens.models import ApiKey
from tokens.ttl import format_ttl
from upstreams.models import UpstreamServer

_PENDING_NONCES = "apikeys.create.pending"
_MAX_NONCES = 20


def _new_nonce(request: HttpRequest) -> str:
    nonce = secrets.token_urlsafe(16)
    pending = request.session.get(_PENDING_NONCES, [])[-(_MAX_NONCES - 1) :]
    request.session[_PENDING_NONCES] = [*pending, nonce]
    return nonce


def _take_nonce(request: HttpRequest, nonce: str) -> bool:
    """True once per form: a reload of the show-once page must not create a second key."""
    pending = request.session.get(_PENDING_NONCES, [])
    if nonce not in pending:
        return False
    request.session[_PENDING_NONCES] = [n for n in pending if n != nonce]
    return True


@dataclass(frozen=True)
class ApiKeyRow:
    key: ApiKey
    ceiling: str
    max_ttl: str
    status: str


def _ceiling_text(ceiling: dict[str, list[str] | None] | None) -> str:
    if ceiling is None:
        return "any server"
    return "; ".join(
        f"{server}: {'all tools' if tools is None else ', '.join(tools)}" for server, tools in ceiling.items()
    )


def _status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


@console_reader_required
def api_key_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [
        ApiKeyRow(
            key=key,
            ceiling=_ceiling_text(key.scope_ceiling),
            max_ttl=format_ttl(timedelta(seconds=key.max_ttl_seconds)),
            status=_status(key, now),
        )
        for key in ApiKey.objects.select_related("owner").order_by("revoked_at", "-created_at")
    ]
    return render(
        request, "console/api_keys/list.html", {"rows": rows, "can_manage": can_manage(request.user)}
    )


@console_admin_required
@require_http_methods(["GET", "POST"])
def api_key_create(request: HttpRequest) -> HttpResponse:
    servers = list(UpstreamServer.objects.order_by("name"))
    if request.method == "POST":
        form = ApiKeyCreateForm(request.POST, servers=servers)
        if form.is_valid():
            if not _take_nonce(request, form.cleaned_data["nonce"]):
                messages.info(request, "That form was already used. An API key is shown only once.")
                return redirect("console-api-keys")
            data = form.cleaned_data
            try:
                created = create_api_key(
                    name=data["name"],
                    owner=data["owner"],
                    scope_ceiling=form.scope_ceiling(),
                    max_ttl=data["max_ttl"],
                    expires_at=timezone.now() + data["expires_in"] if data["expires_in"] else None,
                    actor=request.user.get_username(),
                    client_ip=request.META.get("REMOTE_ADDR") or None,
                )
            except GatehouseError as exc:
                form.add_error(None, exc.detail)
            else:
                response = render(
                    request,
                    "console/api_keys/created.html",
                    {
                        "api_key": created.api_key,
                        "secret": created.secret,
                        "public_url": settings.PUBLIC_URL,
                        "example_server": next(iter(created.api_key.scope_ceiling or {}), "SERVER"),
                    },
                )
                # The only page that ever shows the key: keep it out of every cache and Referer.
                add_never_cache_headers(response)
                response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
                response["Referrer-Policy"] = "no-referrer"
                return response
        resubmit = request.POST.copy()  # the form's data, immutable: re-bind it with a fresh nonce
        resubmit["nonce"] = _new_nonce(request)
        form.data = resubmit
    else:
        form = ApiKeyCreateForm(
            initial={"nonce": _new_nonce(request), "owner": request.user.get_username()}, servers=servers
        )
    return render(request, "console/api_keys/new.html", {"form": form})


@console_admin_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = ApiKey.objects.select_related("owner").filter(pk=key_id).first()
    if api_key is None:
        raise Http404("No such API key.")
    form = ApiKeyRevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            revoke_api_key(
                api_key=api_key,
                actor=request.user.get_username(),
                revoke_minted_tokens=form.cleaned_data["revoke_tokens"],
                client_ip=request.META.get("REMOTE_ADDR") or None,
            )
        except InvalidTransition as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Revoked API key {api_key.display_prefix} ({api_key.name}).")
        return redirect("console-api-keys")
    active_tokens = api_key.tokens.filter(status="active").count()
    return render(
        request,
        "console/api_keys/revoke.html",
        {"api_key": api_key, "form": form, "active_tokens": active_tokens},
    )

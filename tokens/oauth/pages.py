"""Console pages of access: "My access" for anyone signed in, "Access" (grants, clients) for staff.

Thin: they read through ``selectors`` and change through ``grants``/``services``/``clients``.
A person only ever sees and ends their own connections and tokens here.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.exceptions import GatehouseError
from core.permissions import can_manage, console_admin_required
from tokens import services as token_services
from tokens.exceptions import InvalidTransition
from tokens.models import Token
from tokens.oauth import clients, grants, selectors, services
from tokens.oauth.exceptions import GrantError, OAuthError
from tokens.oauth.models import AccessGrant, Connection
from tokens.scope import split_names
from tokens.ttl import parse_ttl
from upstreams.accounts.selectors import accounts_of


def _me(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
def my_access(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    return render(request, "console/access/me.html", {
        "grants": selectors.grants_for(user),
        "connections": selectors.connections_of(user),
        "tokens": selectors.oauth_tokens_of(user),
        "accounts": accounts_of(user),
        "is_staff": can_manage(user),
    })


@login_required
@require_POST
def disconnect(request: HttpRequest, connection_id: int) -> HttpResponse:
    user = _me(request)
    connection = (Connection.objects.live().filter(pk=connection_id, user=user)
                  .select_related("client").first())
    if connection is None:
        raise Http404("No such connection.")
    services.end_connection(connection=connection, actor=user.get_username(),
                            reason="disconnected by its owner", client_ip=request.META.get("REMOTE_ADDR"))
    messages.success(request, f"Disconnected {connection.client.name}; its tokens no longer work.")
    return redirect("console-me")


@login_required
@require_POST
def revoke_my_token(request: HttpRequest, token_id: int) -> HttpResponse:
    user = _me(request)
    token = Token.objects.filter(pk=token_id, owner=user).first()
    if token is None:
        raise Http404("No such token.")
    try:
        token_services.revoke_token(token=token, actor=user.get_username(), reason="revoked by its owner",
                                    client_ip=request.META.get("REMOTE_ADDR"))
    except InvalidTransition as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Revoked {token.name}.")
    return redirect("console-me")


@console_admin_required
@require_http_methods(["GET", "POST"])
def access(request: HttpRequest) -> HttpResponse:
    """Grants: add (a user or group, servers, tools, max TTL) and remove; the OAuth clients."""
    actor = _me(request).get_username()
    if request.method == "POST":
        try:
            if request.POST.get("action") == "remove":
                grant = AccessGrant.objects.filter(pk=request.POST.get("grant", "")).first()
                if grant is None:
                    raise Http404("No such grant.")
                grants.revoke_access(user=grant.user, group=grant.group, servers=[grant.server], actor=actor)
                messages.success(request, f"Removed the grant of {grant.subject} to {grant.server}.")
            else:
                _add_grant(request, actor=actor)
        except GatehouseError as exc:
            messages.error(request, exc.detail)
        return redirect("console-access")
    return render(request, "console/access/list.html", {
        "grants": selectors.grant_list(), "clients": selectors.client_list(),
    })


def _add_grant(request: HttpRequest, *, actor: str) -> None:
    subject = request.POST.get("subject", "").strip()
    kind, _, name = subject.partition(":")
    user = User.objects.filter(username=name).first() if kind == "user" else None
    group = Group.objects.filter(name=name).first() if kind == "group" else None
    if user is None and group is None:
        raise GrantError("Name a user as user:NAME or a group as group:NAME that exists.")
    max_ttl_text = request.POST.get("max_ttl", "").strip()
    max_ttl: timedelta | None = parse_ttl(max_ttl_text, name="max TTL") if max_ttl_text else None
    made = grants.grant_access(
        user=user, group=group, servers=split_names(request.POST.get("servers", "")),
        tools=split_names(request.POST.get("tools", "")), max_ttl=max_ttl, actor=actor,
    )
    messages.success(request, f"Granted {', '.join(g.server for g in made)} to {subject}.")


@console_admin_required
@require_POST
def register_client(request: HttpRequest) -> HttpResponse:
    """An admin registers a client (for apps that cannot register themselves); secret shown once."""
    metadata = {
        "client_name": request.POST.get("name", ""),
        "redirect_uris": split_names(request.POST.get("redirect_uris", "")),
        "token_endpoint_auth_method": "none" if request.POST.get("public") else "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    try:
        registered = clients.register_client(metadata=metadata, client_ip=request.META.get("REMOTE_ADDR"),
                                             actor=_me(request).get_username(), kind="console")
    except OAuthError as exc:
        messages.error(request, exc.description)
        return redirect("console-access")
    response = render(request, "console/access/client_created.html", {"registered": registered})
    response["Cache-Control"] = "no-store"
    return response

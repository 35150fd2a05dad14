"""Console pages of connected accounts: a person connects (pastes a key, or goes to the provider and
back) and disconnects their own on My access; staff disconnect anyone's from the server's page.

Thin: the rules are in ``upstreams.accounts.services`` and ``provider``. A pasted key is never
echoed back (the form field is empty on every render); the PKCE verifier and ``state`` wait in the
server-side session, keyed by ``state``, and are used once.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import GatehouseError
from core.permissions import console_admin_required
from upstreams import user_credentials
from upstreams.accounts import provider, services
from upstreams.models import UpstreamServer

_PENDING = "connected_accounts_pending"
# At most this many connect flows wait at once per browser session (older ones are dropped).
_MAX_PENDING = 5


def _me(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _server(name: str) -> UpstreamServer:
    server = UpstreamServer.objects.filter(name=name, enabled=True).exclude(user_credential="").first()
    if server is None:
        raise Http404("No such server takes personal credentials.")
    return server


def callback_url(server: UpstreamServer) -> str:
    """The redirect URI registered at the provider: exact, under the public URL."""
    return f"{settings.PUBLIC_URL}/console/me/connect/{server.name}/callback"


def _provider(server: UpstreamServer) -> user_credentials.OAuthProvider:
    return user_credentials.provider_of(public=server.user_oauth,
                                        secret_encrypted=server.user_oauth_secret_encrypted)


@login_required
@require_POST
def connect(request: HttpRequest, name: str) -> HttpResponse:
    """Paste kinds: store the key. Provider kinds: off to the provider with PKCE and ``state``."""
    server, user = _server(name), _me(request)
    kind = server.user_credential_kind
    assert kind is not None
    if kind.connect == "paste":
        try:
            services.connect_key(user=user, server=server, value=request.POST.get("value", ""),
                                 actor=user.get_username(), client_ip=request.META.get("REMOTE_ADDR"))
        except GatehouseError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Connected your key for {server.name}.")
        return redirect("console-me")
    verifier, challenge = provider.new_pkce()
    state = secrets.token_urlsafe(24)
    pending = dict(list(request.session.get(_PENDING, {}).items())[-(_MAX_PENDING - 1):])
    pending[state] = {"server": server.name, "verifier": verifier}
    request.session[_PENDING] = pending
    return redirect(provider.authorization_url(_provider(server), redirect_uri=callback_url(server),
                                               state=state, challenge=challenge))


@login_required
@require_GET
def callback(request: HttpRequest, name: str) -> HttpResponse:
    """The provider sends the person back here with a code (or an error) and the ``state``."""
    server, user = _server(name), _me(request)
    pending = request.session.get(_PENDING, {})
    flow = pending.pop(request.GET.get("state", ""), None)
    request.session[_PENDING] = pending
    if flow is None or flow.get("server") != server.name:
        messages.error(request, "That connection attempt is unknown or was already used; connect again.")
        return redirect("console-me")
    if "code" not in request.GET:
        messages.error(request, f"{server.name}: the provider did not connect your account "
                                f"({request.GET.get('error', 'no code')[:64]}).")
        return redirect("console-me")
    try:
        tokens = provider.exchange_code(_provider(server), code=request.GET["code"],
                                        redirect_uri=callback_url(server), verifier=flow["verifier"])
        services.connect_tokens(user=user, server=server, tokens=tokens, actor=user.get_username(),
                                client_ip=request.META.get("REMOTE_ADDR"))
    except GatehouseError as exc:
        messages.error(request, f"{server.name}: {exc.detail}")
    else:
        messages.success(request, f"Connected your account for {server.name}.")
    return redirect("console-me")


@login_required
@require_POST
def disconnect(request: HttpRequest, name: str) -> HttpResponse:
    server, user = _server(name), _me(request)
    services.disconnect(user=user, server=server, actor=user.get_username(),
                        client_ip=request.META.get("REMOTE_ADDR"))
    messages.success(request, f"Disconnected your account for {server.name}.")
    return redirect("console-me")


@console_admin_required
@require_POST
def disconnect_someone(request: HttpRequest, name: str, username: str) -> HttpResponse:
    """Staff end anyone's connection (a leaver, a leaked key); the gateway stops at once."""
    server = UpstreamServer.objects.filter(name=name).first()
    owner = User.objects.filter(username=username).first()
    if server is None or owner is None:
        raise Http404("No such server or person.")
    services.disconnect(user=owner, server=server, actor=request.user.get_username(),
                        client_ip=request.META.get("REMOTE_ADDR"), reason="disconnected by an administrator")
    messages.success(request, f"Disconnected {owner.get_username()} from {server.name}.")
    return redirect("console-server-detail", name=server.name)

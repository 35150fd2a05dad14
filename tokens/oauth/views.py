"""The authorization server's endpoints: they translate HTTP to ``services`` and back.

JSON endpoints (token, register, revoke, metadata) answer RFC 6749 §5.2 error bodies, never
cached, with CORS open (they take no cookies). The authorize endpoint is a console page: sign-in,
then consent (CSRF protected, never framed); errors about the client or its redirect URI are shown
to the person, all others go back to the client with ``state`` and ``iss``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods
from rest_framework.throttling import SimpleRateThrottle

from tokens.oauth import clients, services
from tokens.oauth.exceptions import OAuthError
from upstreams.models import UpstreamServer
from upstreams.tools import list_upstream_tools

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, Content-Type",
         "Access-Control-Allow-Methods": "GET, POST, OPTIONS"}


class _AddressThrottle(SimpleRateThrottle):
    """Per client address, for endpoints that need no key (read at request time)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def get_rate(self) -> str | None:
        rates: dict[str, str] = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})  # type: ignore[assignment]
        return rates.get(self.scope or "")

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ClientRedirect(HttpResponseRedirect):
    """A redirect to a client's registered URI, whatever its scheme (native apps use their own,
    RFC 8252 §7.1); only URIs ``validator`` accepted at registration ever get here."""

    def __init__(self, url: str) -> None:
        self.allowed_schemes = [urlsplit(url).scheme or "https"]
        super().__init__(url)


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _error(exc: OAuthError, *, extra: dict[str, str] | None = None) -> JsonResponse:
    headers = {**_NO_STORE, **_CORS, **(extra or {})}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="gatehouse-oauth"'
    return JsonResponse({"error": exc.error, "error_description": exc.description}, status=exc.status,
                        headers=headers)


_View = Callable[[HttpRequest], JsonResponse]


def _json_endpoint(*, rate: str) -> Callable[[_View], Callable[[HttpRequest], HttpResponse]]:
    """POST only (OPTIONS answers the CORS preflight); ``OAuthError`` becomes its JSON body;
    the per-address limit ``rate`` (a ``DEFAULT_THROTTLE_RATES`` name) applies."""
    return functools.partial(_json_view, rate=rate)


def _json_view(view: _View, *, rate: str) -> Callable[[HttpRequest], HttpResponse]:
    @csrf_exempt
    @never_cache
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return HttpResponse(status=204, headers=_CORS)
        if request.method != "POST":
            response = _error(OAuthError("invalid_request", "Use POST.", status=405))
            response["Allow"] = "POST, OPTIONS"
            return response
        throttle = _AddressThrottle(rate)
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            wait = max(1, math.ceil(throttle.wait() or 1))
            return _error(OAuthError("slow_down", f"Too many requests from this address; retry in {wait} s.",
                                     status=429), extra={"Retry-After": str(wait)})
        try:
            response = view(request)
        except OAuthError as exc:
            return _error(exc)
        for name, value in {**_NO_STORE, **_CORS}.items():
            response[name] = value
        return response

    wrapper.__name__ = view.__name__
    return wrapper


def _form(request: HttpRequest) -> dict[str, str]:
    """The form-encoded parameters; a repeated parameter is an error (RFC 6749 §3.1)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request",
                         "Send the parameters form-encoded (application/x-www-form-urlencoded).")
    params: dict[str, str] = {}
    for name, values in request.POST.lists():
        if len(values) > 1:
            raise OAuthError("invalid_request", f"The parameter {name} was sent more than once.")
        params[name] = values[0]
    return params


def _client_credentials(request: HttpRequest, params: dict[str, str]) -> tuple[str, str | None]:
    """``client_secret_basic`` (RFC 6749 §2.3.1, form-urlencoded id and secret) or the form."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            client_id, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from exc
        return unquote(client_id), unquote(secret)
    return params.get("client_id", ""), params.get("client_secret") or None


# --- metadata --------------------------------------------------------------------------------


def authorization_server_metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414, with the MCP authorization spec's Client ID Metadata Document flag."""
    base = settings.PUBLIC_URL
    document: dict[str, Any] = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": [],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "service_documentation": f"{base}/console/me/",
    }
    if settings.OAUTH_REGISTRATION == "on":
        document["registration_endpoint"] = f"{base}/oauth/register"
    return JsonResponse(document, headers={"Cache-Control": "public, max-age=3600", **_CORS})


# --- JSON endpoints --------------------------------------------------------------------------


@_json_endpoint(rate="oauth_token")
def token(request: HttpRequest) -> JsonResponse:
    params = _form(request)
    client_id, secret = _client_credentials(request, params)
    client = clients.authenticate_client(client_id=client_id, client_secret=secret)
    grant_type = params.get("grant_type", "")
    if grant_type == "authorization_code":
        issued = services.exchange_code(
            client=client, code=params.get("code", ""), redirect_uri=params.get("redirect_uri", ""),
            code_verifier=params.get("code_verifier", ""), resource=params.get("resource", ""),
            client_ip=_client_ip(request),
        )
    elif grant_type == "refresh_token":
        issued = services.refresh(client=client, refresh_token=params.get("refresh_token", ""),
                                  resource=params.get("resource", ""), client_ip=_client_ip(request))
    else:
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")
    return JsonResponse(issued.as_json())


@_json_endpoint(rate="oauth_register")
def register(request: HttpRequest) -> JsonResponse:
    if settings.OAUTH_REGISTRATION != "on":
        raise OAuthError("access_denied", "Dynamic client registration is closed here; ask an administrator "
                         "to register the client in the console.", status=403)
    if request.content_type != "application/json":
        raise OAuthError("invalid_client_metadata", "Send the client metadata as JSON (application/json).")
    if len(request.body) > 16 * 1024:
        raise OAuthError("invalid_client_metadata", "The client metadata is larger than 16 KiB.")
    try:
        metadata = json.loads(request.body)
    except ValueError as exc:
        raise OAuthError("invalid_client_metadata", "The body is not JSON.") from exc
    registered = clients.register_client(metadata=metadata, client_ip=_client_ip(request))
    client = registered.client
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.metadata.get("grant_types", ["authorization_code"]),
        "response_types": ["code"],
    }
    if registered.secret:
        body["client_secret"] = registered.secret
        body["client_secret_expires_at"] = 0
    return JsonResponse(body, status=201)


@_json_endpoint(rate="oauth_token")
def revoke(request: HttpRequest) -> JsonResponse:
    params = _form(request)
    client_id, secret = _client_credentials(request, params)
    client = clients.authenticate_client(client_id=client_id, client_secret=secret)
    services.revoke(client=client, token=params.get("token", ""), client_ip=_client_ip(request))
    return JsonResponse({})


# --- authorize (a console page) --------------------------------------------------------------


def _error_page(request: HttpRequest, exc: OAuthError) -> HttpResponse:
    return render(request, "oauth/error.html", {"error": exc}, status=exc.status)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _consent_rows(scope: dict[str, list[str] | None]) -> list[dict[str, Any]]:
    """Per server: its tools to tick (a grant of all tools lists the tools the server has)."""
    open_servers = list(UpstreamServer.objects.filter(name__in=[s for s, t in scope.items() if t is None]))
    listings = list_upstream_tools(servers=open_servers) if open_servers else {}
    rows = []
    for server, tools in sorted(scope.items()):
        listed = tools
        if listed is None:
            listing = listings.get(server)
            listed = [tool.name for tool in listing.tools] if listing is not None else []
        rows.append({"server": server, "all": tools is None, "tools": listed})
    return rows


@never_cache
@xframe_options_deny
@csrf_protect
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    source = request.GET if request.method == "GET" else request.POST
    params = {name: source.get(name, "") for name in (
        "response_type", "client_id", "redirect_uri", "state", "code_challenge",
        "code_challenge_method", "resource", "scope")}
    try:
        auth_request = services.check_authorization_request(params)
    except OAuthError as exc:
        if exc.redirect_to is None:
            return _error_page(request, exc)
        return ClientRedirect(exc.redirect_to)
    if not request.user.is_authenticated:
        return redirect_to_login(f"/oauth/authorize?{urlencode(auth_request.as_params())}")
    assert isinstance(request.user, User)
    offered = services.offered_scope(request=auth_request, user=request.user)
    context = {
        "req": auth_request,
        "params": auth_request.as_params(),
        "client_host": _host(auth_request.client.client_id) if clients.is_document_client_id(
            auth_request.client.client_id) else "",
        "redirect_host": _host(auth_request.redirect_uri),
        "resource": auth_request.resource,
    }
    if not offered:
        back = services.deny(request=auth_request, user=request.user, reason="no grant for this resource",
                             client_ip=_client_ip(request), user_agent=request.headers.get("User-Agent", ""))
        return render(request, "oauth/no_access.html", {**context, "back": back}, status=403)
    if request.method == "GET":
        return render(request, "oauth/consent.html", {**context, "rows": _consent_rows(offered)})
    if request.POST.get("decision") != "allow":
        return ClientRedirect(services.deny(
            request=auth_request, user=request.user, reason="the person denied consent",
            client_ip=_client_ip(request), user_agent=request.headers.get("User-Agent", "")))
    rows = _consent_rows(offered)
    ticked = set(request.POST.getlist("tools"))
    unticked = {row["server"]: {t for t in row["tools"] if f"{row['server']}:{t}" not in ticked}
                for row in rows}
    try:
        location = services.approve(
            request=auth_request, user=request.user, unticked=unticked,
            tool_names={row["server"]: row["tools"] for row in rows},
            client_ip=_client_ip(request), user_agent=request.headers.get("User-Agent", ""))
    except OAuthError as exc:
        return ClientRedirect(services.redirect_to_client(
            auth_request.redirect_uri, error=exc.error, error_description=exc.description,
            state=auth_request.state))
    return ClientRedirect(location)



"""The protocol's decisions, in one place: redirect URIs, PKCE, resources and scopes.

Plain functions over plain values, no database: ``services`` and ``views`` ask here and never
restate a rule. Sources: OAuth 2.1 (draft-ietf-oauth-v2-1), RFC 7636 (PKCE, S256 only),
RFC 8252 (loopback redirects on any port), RFC 8707 (resource indicators), RFC 7591
(registration metadata), the MCP authorization spec (Client ID Metadata Documents).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tokens.oauth.exceptions import OAuthError

# Scope strings: ``mcp:SERVER`` (every tool the grant allows) or ``mcp:SERVER:TOOL``.
SCOPE_PREFIX = "mcp:"
# RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
# Schemes a browser would run or read locally instead of handing the code to an app.
_DANGEROUS_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"})
_SERVER_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")


def new_secret() -> str:
    """A code or refresh token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a code or refresh token (both are random: no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- redirect URIs ---------------------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` may not be registered as a redirect URI, or None when it may.

    https anywhere; http only to a loopback host (RFC 8252 §7.3); a native app's private-use
    scheme (``cursor://…``, RFC 8252 §7.1); never a fragment, credentials, or a scheme the browser
    would execute or read locally.
    """
    if not isinstance(uri, str) or not uri or len(uri) > 2000 or any(ord(c) < 0x21 for c in uri):
        return "a redirect URI must be a non-empty URL without spaces"
    if "\\" in uri:
        return "a redirect URI must not contain a backslash (browsers read it as a slash)"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "not a URL"
    scheme = parts.scheme.lower()
    if not scheme:
        return "a redirect URI must be absolute"
    if scheme in _DANGEROUS_SCHEMES:
        return f"the {scheme}: scheme is never a redirect URI"
    if parts.fragment or "#" in uri:
        return "a redirect URI must not have a fragment"
    if parts.username or parts.password:
        return "a redirect URI must not carry credentials"
    if scheme == "https":
        return None if parts.hostname else "an https redirect URI needs a host"
    if scheme == "http":
        return None if is_loopback_host(parts.hostname) else "http redirect URIs are only for loopback hosts"
    # Private-use schemes (RFC 8252 §7.1) should be reversed domain names, but clients in use
    # are not (``cursor://``); PKCE is what protects a code another app on the device catches.
    return None


def redirect_uri_matches(registered: list[str], given: str) -> bool:
    """Exact match, except that a loopback http URI matches on any port (RFC 8252 §7.3).

    A URI registration would refuse never matches, nor one with a backslash or credentials: a
    browser reads ``http://evil\\@127.0.0.1/cb`` as a link to ``evil``.
    """
    if redirect_uri_problem(given):
        return False
    if given in registered:
        return True
    try:
        parts = urlsplit(given)
        port_free = parts._replace(netloc=parts.hostname or "")
    except ValueError:
        return False
    if parts.scheme != "http" or not is_loopback_host(parts.hostname) or parts.username:
        return False
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return False
    for uri in registered:
        try:
            known = urlsplit(uri)
        except ValueError:
            continue
        same_host = known.scheme == "http" and known.hostname == parts.hostname
        if same_host and known._replace(netloc=known.hostname or "").geturl() == port_free.geturl():
            return True
    return False


# --- PKCE ------------------------------------------------------------------------------------


def check_code_challenge(challenge: str, method: str) -> None:
    """S256 only: ``plain`` (and a missing method, which means plain) is refused."""
    if not challenge:
        raise OAuthError("invalid_request",
                         "PKCE is required: send code_challenge with code_challenge_method=S256.")
    if method != "S256":
        raise OAuthError("invalid_request", "Only code_challenge_method=S256 is supported.")
    if not _S256_CHALLENGE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge is not an S256 challenge.")


def pkce_verifies(verifier: str, challenge: str) -> bool:
    if not _PKCE_VERIFIER.match(verifier or ""):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(computed, challenge)


# --- resources (RFC 8707) --------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """What a token is for: the whole gateway (``server`` None) or one server."""

    url: str
    server: str | None


def gateway_resource() -> str:
    return f"{settings.PUBLIC_URL}/mcp"


def parse_resource(value: str) -> Resource:
    """``PUBLIC_URL[/mcp]`` names the gateway; ``PUBLIC_URL/mcp/<server>[/]`` (or ``/sse/<server>``)
    one server. Anything else is another resource: ``invalid_target``."""
    if not value:
        raise OAuthError("invalid_target", "resource is required (RFC 8707): name the MCP endpoint's URL.")
    base = settings.PUBLIC_URL
    if not value.startswith(base):
        raise OAuthError("invalid_target", "resource is not this gateway.")
    path = value[len(base):].rstrip("/")
    if path in ("", "/mcp"):
        return Resource(url=gateway_resource(), server=None)
    for prefix in ("/mcp/", "/sse/"):
        if path.startswith(prefix):
            server = path[len(prefix):]
            if _SERVER_NAME.match(server):
                return Resource(url=f"{base}/mcp/{server}", server=server)
    raise OAuthError("invalid_target", "resource is not an MCP endpoint of this gateway.")


# --- scopes ----------------------------------------------------------------------------------

ScopeMap = dict[str, frozenset[str] | None]


def parse_scope(text: str) -> ScopeMap | None:
    """``mcp:a mcp:b:echo`` -> ``{"a": None, "b": {"echo"}}``; None when no ``mcp:`` scope was
    asked for (then the request means everything the grant allows for the resource). Scopes of
    other vocabularies (``openid``, ``offline_access``) are ignored, as RFC 6749 §3.3 allows."""
    wanted: dict[str, set[str] | None] = {}
    for item in (text or "").split():
        if not item.startswith(SCOPE_PREFIX):
            continue
        server, _, tool = item[len(SCOPE_PREFIX):].partition(":")
        if not server:
            continue
        if not tool:
            wanted[server] = None
        elif wanted.get(server, set()) is not None:
            wanted.setdefault(server, set())
            current = wanted[server]
            if current is not None:
                current.add(tool)
    if not wanted:
        return None
    return {s: (None if t is None else frozenset(t)) for s, t in wanted.items()}


def scope_string(scope: dict[str, list[str] | None]) -> str:
    """The scope a token response reports: ``mcp:SERVER`` or one ``mcp:SERVER:TOOL`` per tool."""
    items: list[str] = []
    for server, tools in sorted(scope.items()):
        if tools is None:
            items.append(f"{SCOPE_PREFIX}{server}")
        else:
            items.extend(f"{SCOPE_PREFIX}{server}:{tool}" for tool in sorted(tools))
    return " ".join(items)


def intersect(
    ceiling: ScopeMap, *, resource: Resource, requested: ScopeMap | None
) -> dict[str, list[str] | None]:
    """What a token may hold: the grant's ceiling, limited to the resource and to what was asked.

    A server outside the ceiling or the resource is dropped; tools narrow to the common set.
    """
    result: dict[str, list[str] | None] = {}
    for server, allowed in sorted(ceiling.items()):
        if resource.server is not None and server != resource.server:
            continue
        if requested is not None and server not in requested:
            continue
        asked = requested.get(server) if requested is not None else None
        if allowed is None and asked is None:
            result[server] = None
            continue
        if allowed is None:
            tools = asked
        elif asked is None:
            tools = allowed
        else:
            tools = allowed & asked
        if tools:
            result[server] = sorted(tools)
    return result

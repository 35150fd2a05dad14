"""OAuth clients: registered dynamically (RFC 7591), by an admin, or known by the https URL of
their Client ID Metadata Document, fetched within the bounds of the discovery fetcher."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import cache
from django.utils import timezone

from audit import events
from audit.services import record
from core.oidc_discovery import ProviderUnavailable, fetch_json, is_provider_url
from tokens.oauth import validator
from tokens.oauth.exceptions import OAuthError
from tokens.oauth.models import OAuthClient

_UNREADABLE = "The client's metadata document could not be read (the server log says why)."
logger = logging.getLogger("gatehouse.oauth")
# A metadata document is read again after this long.
DOCUMENT_MAX_AGE = timedelta(minutes=10)
_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")

@dataclass(frozen=True)
class RegisteredClient:
    client: OAuthClient
    # Shown once, in the registration response; only its digest is kept.
    secret: str | None


def _clean_name(value: Any, fallback: str) -> str:
    """A name shown on the consent page: no control, format (bidi, zero-width) or line-separator
    characters, which could make one client's name read as another's."""
    if not isinstance(value, str) or not value.strip():
        return fallback
    shown = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    return shown.strip()[:200] or fallback


def _checked_metadata(metadata: dict[str, Any], *, default_auth: str) -> dict[str, Any]:
    """RFC 7591 §2 metadata as we accept it; ``invalid_redirect_uri`` or
    ``invalid_client_metadata`` otherwise."""
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris or len(uris) > 20:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a list of 1 to 20 URIs.")
    for uri in uris:
        problem = validator.redirect_uri_problem(uri)
        if problem:
            raise OAuthError("invalid_redirect_uri", f"Redirect URI refused: {problem}.")
    method = metadata.get("token_endpoint_auth_method", default_auth)
    if method not in _AUTH_METHODS:
        raise OAuthError("invalid_client_metadata",
                         f"token_endpoint_auth_method must be one of {', '.join(_AUTH_METHODS)}.")
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not set(grant_types) <= {"authorization_code", "refresh_token"}:
        raise OAuthError("invalid_client_metadata",
                         "grant_types may be authorization_code and refresh_token.")
    response_types = metadata.get("response_types", ["code"])
    if not isinstance(response_types, list) or not set(response_types) <= {"code"}:
        raise OAuthError("invalid_client_metadata", "response_types may only be code.")
    return {
        "redirect_uris": list(uris),
        "token_endpoint_auth_method": method,
        "grant_types": grant_types or ["authorization_code"],
        "response_types": ["code"],
        "client_name": _clean_name(metadata.get("client_name"), "Unnamed client"),
    }


def register_client(*, metadata: Any, client_ip: str | None, actor: str = "",
                    kind: str = OAuthClient.Kind.DYNAMIC) -> RegisteredClient:
    """Dynamic Client Registration (RFC 7591) and admin registration in the console."""
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "Send the client metadata as a JSON object.")
    # RFC 7591 §2: a client that says nothing authenticates with a secret.
    checked = _checked_metadata(metadata, default_auth="client_secret_basic")
    secret = None if checked["token_endpoint_auth_method"] == "none" else secrets.token_urlsafe(32)
    client = OAuthClient.objects.create(
        client_id=f"gthc_{secrets.token_urlsafe(18)}",
        kind=kind,
        name=checked["client_name"],
        redirect_uris=checked["redirect_uris"],
        token_endpoint_auth_method=checked["token_endpoint_auth_method"],
        secret_digest=validator.digest(secret) if secret else "",
        metadata={"grant_types": checked["grant_types"], "response_types": checked["response_types"]},
        registered_from=client_ip,
        created_by=actor[:150],
    )
    record(event=events.OAUTH_CLIENT_REGISTERED, actor=actor or "anonymous", client_ip=client_ip,
           detail={"client_id": client.client_id, "client_name": client.name, "kind": kind,
                   "redirect_uris": client.redirect_uris,
                   "token_endpoint_auth_method": client.token_endpoint_auth_method})
    return RegisteredClient(client=client, secret=secret)


def is_document_client_id(client_id: str) -> bool:
    """A Client ID Metadata Document URL: https (http only to loopback), with a path."""
    return is_provider_url(client_id) and urlsplit(client_id).path not in ("", "/")


def resolve_client(client_id: str) -> OAuthClient:
    """The client ``client_id`` names; a metadata document URL is fetched (and cached)."""
    if not client_id or len(client_id) > 2048:
        raise OAuthError("invalid_client", "Unknown client_id.", status=401)
    client = OAuthClient.objects.filter(client_id=client_id).first()
    if client is not None and client.kind != OAuthClient.Kind.DOCUMENT:
        if client.disabled:
            raise OAuthError("invalid_client", "This client is disabled.", status=401)
        return client
    if not is_document_client_id(client_id):
        raise OAuthError("invalid_client", "Unknown client_id.", status=401)
    if client is not None and client.disabled:
        raise OAuthError("invalid_client", "This client is disabled.", status=401)
    if client is not None and client.fetched_at and timezone.now() - client.fetched_at < DOCUMENT_MAX_AGE:
        return client
    return _fetch_client_document(client_id)


def _document_host_problem(client_id: str) -> str | None:
    """Why the document's host may not be fetched: an address on a private, link-local or other
    non-public network (loopback stays allowed, as for issuers, for clients on the same host).
    Resolving here keeps an authorization request from reaching into the internal network."""
    parts = urlsplit(client_id)
    host = parts.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return "its host does not resolve"
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not (ip.is_global or ip.is_loopback):
            return f"its host resolves to a non-public address ({ip})"
    return None


def _fetch_client_document(client_id: str) -> OAuthClient:
    failed_key = f"oauth:document-failed:{validator.digest(client_id)}"
    # One failure answers for a minute: a slow or broken document cannot be made to tie up the
    # server's threads again and again.
    if cache.get(failed_key):
        raise OAuthError("invalid_client", _UNREADABLE, status=401)
    problem = _document_host_problem(client_id)
    try:
        if problem:
            raise ProviderUnavailable(problem)
        document = fetch_json(client_id)
    except ProviderUnavailable as exc:
        cache.set(failed_key, 1, 60)
        # The reason stays in the server log: told to the caller, it would map internal services.
        logger.info("client metadata document refused", extra={"client_id": client_id, "reason": str(exc)})
        raise OAuthError("invalid_client", _UNREADABLE, status=401) from exc
    if document.get("client_id") != client_id:
        raise OAuthError("invalid_client", "The client's metadata document names another client_id.",
                         status=401)
    try:
        checked = _checked_metadata(document, default_auth="none")
    except OAuthError as exc:
        raise OAuthError("invalid_client", f"The client's metadata document is not usable: {exc.description}",
                         status=401) from exc
    if checked["token_endpoint_auth_method"] != "none":
        raise OAuthError("invalid_client", "A metadata document client must be public "
                         "(token_endpoint_auth_method none).", status=401)
    client, created = OAuthClient.objects.update_or_create(
        client_id=client_id,
        defaults={
            "kind": OAuthClient.Kind.DOCUMENT,
            "name": checked["client_name"],
            "redirect_uris": checked["redirect_uris"],
            "token_endpoint_auth_method": "none",
            "metadata": {"grant_types": checked["grant_types"],
                         "client_uri": str(document.get("client_uri", ""))[:500]},
            "fetched_at": timezone.now(),
        },
    )
    if created:
        record(event=events.OAUTH_CLIENT_REGISTERED, actor="anonymous",
               detail={"client_id": client_id, "client_name": client.name, "kind": client.kind,
                       "redirect_uris": client.redirect_uris, "token_endpoint_auth_method": "none"})
    return client


def authenticate_client(*, client_id: str, client_secret: str | None) -> OAuthClient:
    """The token and revocation endpoints' client check: public clients name themselves,
    confidential ones prove it with their secret (compared in constant time)."""
    client = resolve_client(client_id)
    if client.is_public:
        return client
    presented = validator.digest(client_secret) if client_secret else ""
    if not presented or not hmac.compare_digest(presented, client.secret_digest):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return client



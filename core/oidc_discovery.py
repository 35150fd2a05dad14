"""Reading an OpenID Connect provider's public documents: the one home for both uses.

Console sign-in (``gatehouse/oidc_login.py``) and trusted issuers (``tokens/issuers/keys.py``)
fetch a provider's discovery document and key set the same way, and so does the OAuth server for
Client ID Metadata Documents (``tokens/oauth/clients.py``): ``https`` only (``http`` to a
loopback address for a provider on the same host and for tests), 5 s per request, no redirects,
at most 256 KiB, JSON objects only, and a discovery document must name exactly the issuer it was
fetched for (OpenID Connect Discovery §4.3).
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_DOCUMENT_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


class ProviderUnavailable(Exception):
    """A provider's document could not be fetched or read; the message says why, never a secret."""


def is_provider_url(url: str) -> bool:
    """``https`` with a host, or ``http`` to a loopback host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_json(url: str) -> dict[str, Any]:
    if not is_provider_url(url):
        raise ProviderUnavailable(f"{url} is not https (or http to a loopback address).")
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered {response.status_code}.")
            body = b""
            # 5 s per read is not a bound on a server that drips a byte at a time: the whole
            # document must arrive within twice that.
            deadline = time.monotonic() + 2 * FETCH_TIMEOUT_SECONDS
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes.")
                if time.monotonic() > deadline:
                    raise ProviderUnavailable(f"{url} took too long to answer.")
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{url} could not be reached ({type(exc).__name__}).") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ProviderUnavailable(f"{url} did not answer JSON.") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} did not answer a JSON object.")
    return document


def discover(issuer: str) -> dict[str, Any]:
    """``ISSUER/.well-known/openid-configuration``, checked to name exactly ``issuer``."""
    document = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise ProviderUnavailable(
            f"The discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}."
        )
    for name in ("jwks_uri", "authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        value = document.get(name)
        if value is not None and (not isinstance(value, str) or not is_provider_url(value)):
            raise ProviderUnavailable(f"The discovery document's {name} is not an https URL.")
    return document

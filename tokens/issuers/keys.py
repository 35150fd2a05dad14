"""A provider's discovery document and signing keys, fetched over HTTPS and cached per process.

Numbers: a key set is reused for ``KEYS_FRESH_SECONDS`` (1 h); a token whose ``kid`` is not in
it triggers one refetch, at most every ``GATEHOUSE_ISSUER_KEYS_REFETCH_SECONDS`` (10 s) per
issuer, so a provider's key rotation is picked up on the first token signed with the new key
while a flood of made-up kids costs the provider one request per 10 s. At most ``MAX_ISSUERS``
key sets (64) of at most ``MAX_KEYS`` keys (100) each, documents of at most 256 KiB, 5 s per
fetch, no redirects. Only ``https`` URLs, or ``http`` to a loopback address (a provider on the
same host, tests).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from django.conf import settings

from tokens.exceptions import InvalidTokenRequest

KEYS_FRESH_SECONDS = 3600.0
MAX_ISSUERS = 64
MAX_KEYS = 100
MAX_DOCUMENT_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


class ProviderUnavailable(Exception):
    """The provider's discovery document or key set could not be fetched or read."""


def check_provider_url(url: str, *, what: str = "issuer URL") -> str:
    """``url`` if it is https, or http to a loopback host; else ``InvalidTokenRequest``."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise InvalidTokenRequest(f"The {what} must be https (http only to a loopback address): {url!r}.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _get_json(url: str) -> dict[str, Any]:
    check_provider_url(url, what="provider URL")
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered {response.status_code}.")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes.")
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{url} could not be reached ({type(exc).__name__}).") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ProviderUnavailable(f"{url} did not answer JSON.") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} did not answer a JSON object.")
    return document


def discover_jwks_uri(issuer: str) -> str:
    """The ``jwks_uri`` from ``ISSUER/.well-known/openid-configuration``, checked.

    The document must name exactly this issuer (OpenID Connect Discovery §4.3): a provider that
    says it is someone else is not trusted as this one.
    """
    document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise ProviderUnavailable(
            f"The discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}."
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ProviderUnavailable("The discovery document has no jwks_uri.")
    return check_provider_url(jwks_uri, what="jwks_uri")


@dataclass(frozen=True)
class ProviderKey:
    public_key: Any  # a cryptography public key, as pyjwt's PyJWK read it
    alg: str | None  # the algorithm the provider published for it, if it did


@dataclass
class _KeySet:
    keys: dict[str, ProviderKey] = field(default_factory=dict)
    fetched_at: float = float("-inf")  # last successful fetch: freshness
    attempted_at: float = float("-inf")  # last try, failed or not: the refetch rate limit


def _parse_keys(document: dict[str, Any]) -> dict[str, ProviderKey]:
    found: dict[str, ProviderKey] = {}
    for entry in (document.get("keys") or [])[:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("kty") == "oct":
            continue  # a symmetric key in a public document is never a verification key
        try:
            alg = entry.get("alg")
            public_key = jwt.PyJWK(entry).key
            found[kid] = ProviderKey(public_key=public_key, alg=alg if isinstance(alg, str) else None)
        except jwt.PyJWTError:
            continue  # an algorithm or key type pyjwt cannot use: skip it, keep the others
    return found


class KeyCache:
    """Per-process signing keys of each trusted issuer, keyed by its ``jwks_uri``."""

    def __init__(self) -> None:
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def key(self, *, jwks_uri: str, kid: str) -> ProviderKey | None:
        """The key ``kid`` of that key set, refetching once (rate-limited) when it is unknown.

        While the provider cannot be reached, the keys it served last go on working; a kid never
        seen raises ``ProviderUnavailable`` then, so the refusal says why.
        """
        with self._lock:
            entry = self._sets.setdefault(jwks_uri, _KeySet()) if len(self._sets) < MAX_ISSUERS else (
                self._sets.get(jwks_uri) or self._reset(jwks_uri)
            )
        now = time.monotonic()
        if now - entry.fetched_at < KEYS_FRESH_SECONDS and kid in entry.keys:
            return entry.keys[kid]
        if now - entry.attempted_at < settings.ISSUER_KEYS_REFETCH_SECONDS:
            return entry.keys.get(kid)
        entry.attempted_at = now
        try:
            keys = _parse_keys(_get_json(jwks_uri))
        except ProviderUnavailable:
            if kid in entry.keys:
                return entry.keys[kid]
            raise
        entry.keys, entry.fetched_at = keys, now
        return keys.get(kid)

    def _reset(self, jwks_uri: str) -> _KeySet:
        self._sets.clear()  # bounded: more issuers than MAX_ISSUERS only costs refetches
        return self._sets.setdefault(jwks_uri, _KeySet())

    def forget(self, jwks_uri: str) -> None:
        with self._lock:
            self._sets.pop(jwks_uri, None)


provider_keys = KeyCache()

"""A trusted issuer's signing keys, cached per process (fetching is ``core/oidc_discovery``'s).

Numbers: a key set is reused for ``KEYS_FRESH_SECONDS`` (1 h); a token whose ``kid`` is not in
it triggers one refetch, at most every ``GATEHOUSE_ISSUER_KEYS_REFETCH_SECONDS`` (10 s) per
issuer, so a provider's key rotation is picked up on the first token signed with the new key
while a flood of made-up kids costs the provider one request per 10 s. At most ``MAX_ISSUERS``
key sets (64) of at most ``MAX_KEYS`` keys (100) each.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings

from core.oidc_discovery import ProviderUnavailable, discover, fetch_json, is_provider_url
from tokens.exceptions import InvalidTokenRequest

__all__ = ["KeyCache", "ProviderKey", "ProviderUnavailable", "check_provider_url", "discover_jwks_uri",
           "provider_keys"]

KEYS_FRESH_SECONDS = 3600.0
MAX_ISSUERS = 64
MAX_KEYS = 100


def check_provider_url(url: str, *, what: str = "issuer URL") -> str:
    """``url`` if it is https, or http to a loopback host; else ``InvalidTokenRequest``."""
    if not is_provider_url(url):
        raise InvalidTokenRequest(f"The {what} must be https (http only to a loopback address): {url!r}.")
    return url


def discover_jwks_uri(issuer: str) -> str:
    """The ``jwks_uri`` of ``issuer``'s discovery document (which must name exactly it)."""
    jwks_uri = discover(issuer).get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ProviderUnavailable("The discovery document has no jwks_uri.")
    return jwks_uri


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
            keys = _parse_keys(fetch_json(jwks_uri))
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

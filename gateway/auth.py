"""Credential extraction and removal: which token a request presents, and headers safe to forward.

Order, first found wins: ``Authorization: Bearer``, ``X-API-Key``, ``?key=``. Header names are
case-insensitive (ASGI already lower-cases them). All three are removed before anything is
forwarded; whether a credential is *good* is decided only by
``tokens.services.authenticate_token``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from gatehouse.secrets_mask import TOKEN_PREFIX

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization"})
QUERY_KEY = "key"
# Longer than any token we mint by far; anything bigger is refused without parsing it.
MAX_CREDENTIAL_LENGTH = 8192

HeaderPairs = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Credential:
    raw: str
    source: Literal["bearer", "x-api-key", "query"]

    def __repr__(self) -> str:  # never print the secret
        return f"Credential(source={self.source!r})"


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def query_param(query_string: str, name: str) -> str | None:
    return next((value for key, value in _query_pairs(query_string) if key == name), None)


def extract_credential(headers: HeaderPairs, query_string: str) -> Credential | None:
    """The credential this request presents, or None. Malformed values still count as presented."""
    header_map: dict[str, str] = {}
    for name, value in headers:
        header_map.setdefault(name.lower(), value)
    authorization = header_map.get("authorization", "").strip()
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return Credential(raw=value.strip(), source="bearer")
    api_key = header_map.get("x-api-key", "").strip()
    if api_key:
        return Credential(raw=api_key, source="x-api-key")
    key = query_param(query_string, QUERY_KEY)
    if key is not None:
        return Credential(raw=key.strip(), source="query")
    return None


def strip_query_credentials(query_string: str, *, credential: str = "") -> str:
    """The query string without ``key`` or any parameter carrying ``credential`` (or its bare JWT)."""
    bare = credential.removeprefix(TOKEN_PREFIX)
    kept = [
        part for part in query_string.split("&")
        if part
        and unquote_plus(part.partition("=")[0]) != QUERY_KEY
        and not (bare and bare in unquote_plus(part))
    ]
    return "&".join(kept)

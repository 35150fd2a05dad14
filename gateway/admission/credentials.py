"""Client credentials: the ways a request can present its token, as one registry.

Each kind knows where it sits in a request (``find``), what must be stripped before anything is
forwarded (``header_names``, ``query_names``) and the name audit rows give it (``source``, never
the secret). ``CREDENTIAL_KINDS`` is in priority order, first found wins: ``Authorization:
Bearer``, ``X-API-Key``, ``?key=``. Extraction, header stripping and query stripping all walk it,
so a new kind is one class appended here. Header names are case-insensitive (ASGI already
lower-cases them). Whether a credential is *good* is decided only by
``tokens.services.authenticate_token``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote_plus

from core.secrets_mask import TOKEN_PREFIX

# Longer than any token we mint by far; anything bigger is refused without parsing it.
MAX_CREDENTIAL_LENGTH = 8192
# Never forwarded although no kind reads it: a proxy credential is never meant for the upstream.
ALWAYS_STRIPPED_HEADERS = frozenset({"proxy-authorization"})

HeaderPairs = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Credential:
    raw: str
    source: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credential(source={self.source!r})"


@dataclass(frozen=True)
class RequestParts:
    """Where credentials hide: the headers (first copy of each, lower-case names) and the query."""

    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]]

    def query_value(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


class CredentialKind:
    """One way of presenting a token. ``find`` returns the raw value, or None when absent."""

    source: ClassVar[str]
    header_names: ClassVar[frozenset[str]] = frozenset()
    query_names: ClassVar[frozenset[str]] = frozenset()

    def find(self, request: RequestParts) -> str | None:
        raise NotImplementedError


class BearerHeader(CredentialKind):
    source = "bearer"
    # Stripped whatever its scheme: Basic credentials meant for the gateway are not the upstream's.
    header_names = frozenset({"authorization"})

    def find(self, request: RequestParts) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
        # A malformed value after "Bearer" still counts as presented (and gets 401, not "missing").
        return value.strip() if scheme.lower() == "bearer" else None


class ApiKeyHeader(CredentialKind):
    source = "x-api-key"
    header_names = frozenset({"x-api-key"})

    def find(self, request: RequestParts) -> str | None:
        return request.headers.get("x-api-key", "").strip() or None


class QueryKey(CredentialKind):
    """``?key=``: for clients that cannot set a header; masked in every log."""

    source = "query"
    query_names = frozenset({"key"})

    def find(self, request: RequestParts) -> str | None:
        value = request.query_value("key")
        return value.strip() if value is not None else None


CREDENTIAL_KINDS: list[CredentialKind] = [BearerHeader(), ApiKeyHeader(), QueryKey()]


def credential_header_names() -> frozenset[str]:
    """Request headers that never reach an upstream because they may carry a client credential."""
    return ALWAYS_STRIPPED_HEADERS.union(*(kind.header_names for kind in CREDENTIAL_KINDS))


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
    request = RequestParts(headers=header_map, query=_query_pairs(query_string))
    for kind in CREDENTIAL_KINDS:
        raw = kind.find(request)
        if raw is not None:
            return Credential(raw=raw, source=kind.source)
    return None


def strip_query_credentials(query_string: str, *, credential: str = "") -> str:
    """The query string without credential parameters, nor any carrying ``credential`` (or its bare JWT)."""
    names = frozenset().union(*(kind.query_names for kind in CREDENTIAL_KINDS))
    bare = credential.removeprefix(TOKEN_PREFIX)
    kept = [
        part for part in query_string.split("&")
        if part
        and unquote_plus(part.partition("=")[0]) not in names
        and not (bare and bare in unquote_plus(part))
    ]
    return "&".join(kept)

"""Identity to upstreams: short-lived, audience-bound JWTs that tell an upstream who calls.

For a server with ``forward_identity`` on (``upstreams.models.UpstreamServer``), every request
the gateway sends it carries ``identity_assertion(...)`` in the server's identity header
(``identity_header``): ``Authorization: Bearer <jwt>`` by default, what MCP SDK servers verify,
or the bare JWT in any other header. The upstream verifies it against ``/.well-known/jwks.json``.

Claims: ``iss`` (``settings.TOKEN_ISSUER``), ``aud`` (the server's public URL, credentials
redacted: ``UpstreamServer.url``), ``sub`` (the token owner's username), ``iat``, ``exp`` (5
minutes later, never after the token itself expires), ``jti``, ``client_id`` (the Gatehouse
token's ``jti``, the value audit rows name it by; a rotated token is a new client), ``scope``
(the tools the token may call on this server, space separated, sorted; ``*`` when it may call
all of them) and ``sid`` (the gateway's own ``Mcp-Session-Id``, when the request belongs to a
session). JOSE header: ``kid`` of the active signing key and ``typ: gatehouse-identity+jwt``
(access tokens say ``JWT``), which ``authenticate_token`` refuses, as it refuses the foreign
``aud``: an assertion is never a client credential.

Cheap on the hot path: an assertion is reused for the same token, server (and its URL) and
session while it has more than ``REUSE_MIN_REMAINING_SECONDS`` left (a bounded LRU per process),
so a request normally signs nothing and queries nothing. Only signing a new one reads which key
is active (one indexed row; the private key is decrypted and parsed once per process), so it is
always signed by the key active at that moment, also right after ``rotate_signing_key`` on
another instance. Assertions already out keep verifying after a rotation, cached ones included,
because ``prune_signing_keys`` keeps a retired key published for ``RETIRED_KEY_MIN_SECONDS`` at
least, longer than any assertion lives.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

import jwt
from django.conf import settings

from tokens import crypto
from tokens.models import (
    IDENTITY_ASSERTION_LIFETIME_SECONDS,
    IDENTITY_ASSERTION_TYP,
    SigningKey,
    Token,
)
from tokens.scope import TokenScope, has_odd_characters
from tokens.services import AuthenticatedToken
from tokens.signing_keys import get_active_signing_key
from upstreams.target import UpstreamTarget

ALL_TOOLS = "*"
REUSE_MIN_REMAINING_SECONDS = 60
CACHE_SIZE = 4096
BEARER_HEADER = "authorization"


_lock = threading.Lock()
# (client_id, server id, audience, session id) -> (assertion, its exp); oldest first.
_assertions: OrderedDict[tuple[str, int, str, str], tuple[str, int]] = OrderedDict()


def _active_key() -> tuple[str, str, crypto.PrivateKey]:
    """(kid, algorithm, private key) of the active key: one indexed read, the key's PEM decrypted
    and parsed once per process (``crypto.load_private_key`` is cached by ciphertext)."""
    row = (
        SigningKey.objects.filter(status=SigningKey.Status.ACTIVE)
        .values_list("kid", "algorithm", "private_key_encrypted")
        .first()
    )
    if row is None:
        key = get_active_signing_key()  # the first key ever: created on first use
        row = (key.kid, key.algorithm, key.private_key_encrypted)
    kid, algorithm, encrypted = row
    return kid, algorithm, crypto.load_private_key(encrypted)


def _caller(token: AuthenticatedToken | Token) -> tuple[str, str, TokenScope, int | None]:
    """(client_id, subject, scope, token expiry) of an authenticated token or a token row."""
    if isinstance(token, Token):
        owner, scope = token.owner.get_username(), TokenScope.from_mapping(token.scope)
    else:
        owner, scope = token.owner_username, token.scope
    expires = int(token.expires_at.timestamp()) if token.expires_at is not None else None
    return token.jti, owner, scope, expires


def scope_claim(scope: TokenScope, server: str) -> str:
    """The tools ``scope`` allows on ``server``, space separated; ``*`` for all of them.

    A tool name with a space cannot be written in a space-separated list: it is left out (the
    claim may only ever say less than the token allows, never more).
    """
    if server not in scope.servers:
        return ""
    tools = scope.servers[server]
    if tools is None:
        return ALL_TOOLS
    return " ".join(sorted(t for t in tools if not has_odd_characters(t)))


def identity_assertion(
    *, token: AuthenticatedToken | Token, server: UpstreamTarget, session_id: str = ""
) -> str:
    """A signed assertion that ``token``'s owner calls ``server`` (in gateway session ``session_id``)."""
    client_id, subject, scope, token_expires = _caller(token)
    key = (client_id, server.id, server.public_url, session_id)
    now = int(time.time())
    with _lock:
        cached = _assertions.get(key)
        if cached is not None and cached[1] - now > REUSE_MIN_REMAINING_SECONDS:
            _assertions.move_to_end(key)
            return cached[0]
    kid, algorithm, private_key = _active_key()
    expires = now + IDENTITY_ASSERTION_LIFETIME_SECONDS
    if token_expires is not None:
        expires = max(min(expires, token_expires), now + 1)
    claims: dict[str, object] = {
        "iss": settings.TOKEN_ISSUER,
        "aud": server.public_url,
        "sub": subject,
        "iat": now,
        "exp": expires,
        "jti": secrets.token_hex(16),
        "client_id": client_id,
        "scope": scope_claim(scope, server.name),
    }
    if session_id:
        claims["sid"] = session_id
    assertion = jwt.encode(
        claims, private_key, algorithm=algorithm, headers={"kid": kid, "typ": IDENTITY_ASSERTION_TYP}
    )
    with _lock:
        _assertions[key] = (assertion, expires)
        _assertions.move_to_end(key)
        while len(_assertions) > CACHE_SIZE:
            _assertions.popitem(last=False)
    return assertion


def identity_header(
    *, token: AuthenticatedToken | Token, server: UpstreamTarget, session_id: str = ""
) -> tuple[str, str] | None:
    """The ``(name, value)`` header pair that carries the identity to ``server``, or None when off."""
    if not server.forward_identity:
        return None
    assertion = identity_assertion(token=token, server=server, session_id=session_id)
    name = server.identity_header
    if name.lower() == BEARER_HEADER:
        return name, f"Bearer {assertion}"
    return name, assertion


def forwarded_identity(*, token: AuthenticatedToken, server: UpstreamTarget) -> dict[str, str] | None:
    """What an audit row says about the identity sent upstream: subject and header, never the JWT."""
    if not server.forward_identity:
        return None
    return {"sub": token.owner_username, "header": server.identity_header}


def clear_cache() -> None:
    """Forget every cached assertion (tests; a process never needs it)."""
    with _lock:
        _assertions.clear()

"""Admission: everything the gateway must know from the database before it forwards a request.

``admit`` runs once per request in one ``sync_to_async`` hop: per-IP limit, token check (through
``authenticate_token``, the only verifier), per-token limit, server scope, the upstream server's
configuration and, when the request names a session, its binding.

Speed, measured in ``bench/gateway``: the hop runs on a small dedicated thread pool whose database
connections stay open (reconnecting per request cost more than the rest of the check), and a
token's successful verdict is reused for at most ``VERDICT_TTL`` seconds in this process (the
server's row is read every time, ``upstreams.target.enabled_target``: a cached row id goes stale
when a server is re-created). That
keeps the promise that a revocation reaches new requests and open streams within 1 s on
every instance, without two queries and a signature check on every request of a busy token.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from gateway import ratelimit, sessions
from gateway.credentials import MAX_CREDENTIAL_LENGTH, Credential
from gateway.errors import BadRequest, InsufficientScope, Refusal, Unauthorized, UnknownServer
from tokens.assertions import identity_header
from tokens.exceptions import (
    AuthenticationFailed,
    ExternalTokenRefused,
    IdentityAssertionPresented,
    TokenRevoked,
)
from tokens.services import AuthenticatedToken, authenticate_token, mark_token_used
from upstreams.target import UpstreamTarget, enabled_target
from upstreams.transports import Transport

T = TypeVar("T")

# mark_token_used already throttles in SQL; this keeps even that UPDATE off most requests.
_MARK_USED_EVERY = 60.0
_marked: dict[int, float] = {}
_marked_lock = threading.Lock()


@dataclass(frozen=True)
class Admission:
    token: AuthenticatedToken
    server: UpstreamTarget
    binding: sessions.Binding | None
    # The signed identity header for the upstream (``tokens.assertions``), when the server wants one.
    identity: tuple[str, str] | None = None


# Threads of this pool keep their database connection between calls.
DB_THREADS = 8
_db_pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="gateway-db")
VERDICT_TTL = 0.5


def _on_pool_connection(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    try:
        return func(**kwargs)
    except (InterfaceError, OperationalError):
        # A connection the database dropped (restart, idle timeout): reconnect once and retry.
        connection.close()
        return func(**kwargs)


def close_pool_connections() -> None:
    """Close every database thread's connection (it reopens on the next call).

    For whoever must drop the database while this process lives on, e.g. a test run that used
    the gateway in-process. Each thread waits at a barrier, so each closes its own connection.
    """
    barrier = threading.Barrier(DB_THREADS)

    def close() -> None:
        barrier.wait(timeout=10)
        connection.close()

    for future in [_db_pool.submit(close) for _ in range(DB_THREADS)]:
        future.result()


def run_db(func: Callable[..., T], /, **kwargs: Any) -> Awaitable[T]:
    """Run a sync ORM function off the event loop on the gateway's database threads."""
    return SyncToAsync(_on_pool_connection, thread_sensitive=False, executor=_db_pool)(func, kwargs)


class _Verdicts:
    """A tiny thread-safe TTL cache of successful answers (never of refusals)."""

    def __init__(self, *, ttl: float, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            found = self._items.get(key)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._items) >= self.max_size:
                self._items.clear()
            self._items[key] = (time.monotonic(), value)


_tokens = _Verdicts(ttl=VERDICT_TTL)


def authenticate(credential: Credential | None) -> AuthenticatedToken:
    if credential is None:
        raise Unauthorized(presented=False)
    if len(credential.raw) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized("The token is too long to be a Gatehouse token.", presented=True)
    key = hashlib.sha256(credential.raw.encode()).hexdigest()
    cached: AuthenticatedToken | None = _tokens.get(key)
    if cached is not None and (cached.expires_at is None or cached.expires_at > timezone.now()):
        return cached
    try:
        token = authenticate_token(raw_token=credential.raw)
    except AuthenticationFailed as exc:
        refusal = Unauthorized(exc.detail, presented=True)
        if isinstance(exc, IdentityAssertionPresented):  # one of ours, sent back: audited by name
            refusal.reason = "identity_assertion_presented"
        elif isinstance(exc, ExternalTokenRefused):  # a trusted issuer's JWT: why, by name
            refusal.reason = f"external_{exc.reason}"
        raise refusal from exc
    _tokens.put(key, token)
    return token


def _mark_used(token_id: int) -> None:
    now = time.monotonic()
    with _marked_lock:
        if now - _marked.get(token_id, -_MARK_USED_EVERY) < _MARK_USED_EVERY:
            return
        _marked[token_id] = now
    mark_token_used(token_id=token_id)


def admit(
    *,
    client_ip: str | None,
    credential: Credential | None,
    server_name: str | None,
    session_id: str | None,
    transport: Transport,
) -> Admission:
    """Admit a request to ``transport``'s endpoint, or raise the ``Refusal`` that answers it.

    A refusal raised once the token is known names it (and the server), so its audit row does.
    """
    ratelimit.hit(bucket="ip", key=client_ip or "", rate=settings.IP_RATE)
    token = authenticate(credential)
    try:
        ratelimit.hit(bucket="token", key=token.jti, rate=settings.TOKEN_RATE)
        name = server_name or token.scope.only_server()
        if name is None:
            raise BadRequest(
                "This token is scoped to several servers; use /mcp/<server>/.", code="server_required"
            )
        if not token.scope.allows_server(name):
            raise InsufficientScope(f"This token is not scoped to the server {name!r}.")
        server = enabled_target(name)
        if server is None:
            raise UnknownServer(f"No enabled upstream server named {name!r}.")
        if server.transport.endpoint_name != transport.name:
            spoken = server.transport
            raise BadRequest(
                f"The server {name!r} speaks {spoken.label}; use {spoken.client_path(name)}.",
                code="wrong_transport",
            )
        binding = None
        if session_id:
            binding = sessions.find_binding(
                session_id=session_id, token=token, server_id=server.id, transport=server.transport.name
            )
        _mark_used(token.token_id)
    except Refusal as refusal:
        refusal.with_subject(token=token, server=server_name or token.scope.only_server() or "")
        raise
    # Usually a cache hit: no signing, no query (``tokens.assertions``).
    identity = identity_header(token=token, server=server, session_id=binding.id if binding else "")
    return Admission(token=token, server=server, binding=binding, identity=identity)


@dataclass(frozen=True)
class Recheck:
    """What a stream re-check found: the raw tokens still good, the sessions still active, and
    for revoked tokens when they were revoked (epoch seconds: the revoke-to-close metric)."""

    good_tokens: set[str]
    active_sessions: set[str]
    revoked_at: dict[str, float] = field(default_factory=dict)


def recheck(*, raw_tokens: list[str], session_ids: list[str]) -> Recheck:
    """For open streams: which raw tokens still authenticate, which sessions are still active."""
    good: set[str] = set()
    revoked_at: dict[str, float] = {}
    for raw in raw_tokens:
        try:
            authenticate_token(raw_token=raw)
        except TokenRevoked as exc:
            if exc.since is not None:
                revoked_at[raw] = exc.since.timestamp()
            continue
        except AuthenticationFailed:
            continue
        good.add(raw)
    return Recheck(good_tokens=good, active_sessions=sessions.active_session_ids(session_ids),
                   revoked_at=revoked_at)

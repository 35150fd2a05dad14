"""Admission: everything the gateway must know before it forwards a request.

``admit`` states the rules once: per-IP limit, token check (``authenticate_token``, the only
verifier, behind its cache), per-token limit, server scope, the upstream server's configuration,
for a server that takes each caller's own credential the caller's connected account
(``upstreams.accounts``; none: ``AccountNotConnected``) and, when the request names a session,
its binding. ``admit_fast`` runs it first on the event
loop against the per-process caches of ``gateway.admission.caches`` (no database, no thread
hop), and on any miss once more in one ``sync_to_async`` hop against the database, which fills
the caches. What the caches may hold and why they never admit what the database would refuse is
in ``gateway.admission.caches``. The hop runs on the threads of ``gateway.admission.db_pool``.

Speed, measured by ``make bench`` (``bench/gateway``, docs/performance.md): the hop runs on a
small dedicated thread pool whose database connections stay open (reconnecting per request cost
more than the rest of the check). Last-used and last-seen times are noted in memory and written
by the change follower in one batch every second, never on the request. The rate-limit hits a
request's rules reach are counted together in one awaited round trip (``Limits``): on PostgreSQL
+ Redis the two synchronous Redis round trips per request had blocked the event loop (every
request and stream of the process waited on them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from core import changes
from gateway.admission import bindings, caches, ratelimit
from gateway.admission.credentials import MAX_CREDENTIAL_LENGTH, Credential
from gateway.admission.db_pool import run_db
from gateway.request.refusals import (
    AccountNotConnected,
    BadRequest,
    InsufficientScope,
    RateLimited,
    Refusal,
    Unauthorized,
    UnknownServer,
    UpstreamUnavailable,
)
from tokens.assertions import identity_header
from tokens.exceptions import (
    AuthenticationFailed,
    ExternalTokenRefused,
    IdentityAssertionPresented,
    TokenRevoked,
)
from tokens.services import AuthenticatedToken, authenticate_token, mark_tokens_used
from upstreams.accounts.models import account_key
from upstreams.accounts.selectors import connect_url, is_broken
from upstreams.accounts.services import AccountHeader, credential_header
from upstreams.exceptions import ProviderUnreachable
from upstreams.target import UpstreamTarget, enabled_target
from upstreams.transports import Transport


@dataclass(frozen=True)
class Admission:
    token: AuthenticatedToken
    server: UpstreamTarget
    binding: bindings.Binding | None
    # The signed identity header for the upstream (``tokens.assertions``), when the server wants one.
    identity: tuple[str, str] | None = None
    # The caller's own credential for a server that takes one (``upstreams.accounts``).
    account: tuple[str, str] | None = None

    @property
    def caller_headers(self) -> list[tuple[str, str]]:
        """The headers that say who calls, added to every upstream request of this caller."""
        return [h for h in (self.identity, self.account) if h is not None]


def _refusal_of(exc: AuthenticationFailed) -> Unauthorized:
    refusal = Unauthorized(exc.detail, presented=True)
    if isinstance(exc, IdentityAssertionPresented):  # one of ours, sent back: audited by name
        refusal.reason = "identity_assertion_presented"
    elif isinstance(exc, ExternalTokenRefused):  # a trusted issuer's JWT: why, by name
        refusal.reason = f"external_{exc.reason}"
    return refusal


class _Miss(Exception):
    """A cache had no answer: admission goes to the database."""


# Keyed by the raw credential's SHA-256 (never the credential itself), forgotten by jti.
_verdicts: caches.HotCache[str, AuthenticatedToken] = caches.cache("token verdicts", kind=changes.TOKEN)
_targets: caches.HotCache[str, UpstreamTarget] = caches.cache("upstream targets", kind=changes.SERVER)
_bindings: caches.HotCache[str, bindings.Bound] = caches.cache("session bindings", kind=changes.SESSION)
# Keyed by (owner id, server id); kept no longer than the access token is good before its refresh.
_accounts: caches.HotCache[tuple[int, int], AccountHeader] = caches.cache(
    "connected accounts", kind=changes.ACCOUNT
)


class Lookups:
    """Where admission's answers come from: here, the per-process caches (``gateway.admission.caches``);
    a miss raises ``_Miss``. ``DatabaseLookups`` asks the database and fills the caches."""

    def token(self, credential: Credential) -> AuthenticatedToken:
        found = _verdicts.get(_digest(credential))
        if found is None:
            raise _Miss
        return found

    def server(self, name: str) -> UpstreamTarget | None:
        found = _targets.get(name)
        if found is None:
            raise _Miss
        return found

    def session(self, session_id: str) -> bindings.Bound | None:
        found = _bindings.get(session_id)
        if found is None:
            raise _Miss
        return found

    def account(self, token: AuthenticatedToken, server: UpstreamTarget) -> AccountHeader | None:
        found = _accounts.get((token.owner_id, server.id))
        if found is None:
            raise _Miss
        return found


class DatabaseLookups(Lookups):
    def __init__(self) -> None:
        # Read before any lookup: an answer that raced a change is not cached (``hot``).
        self.epoch = caches.epoch()

    def token(self, credential: Credential) -> AuthenticatedToken:
        try:
            token = authenticate_token(raw_token=credential.raw)
        except AuthenticationFailed as exc:
            raise _refusal_of(exc) from exc
        _verdicts.put(_digest(credential), token, tag=token.jti, seen_epoch=self.epoch,
                      until=token.usable_until)
        return token

    def server(self, name: str) -> UpstreamTarget | None:
        target = enabled_target(name)
        if target is not None:
            _targets.put(name, target, tag=name, seen_epoch=self.epoch)
        return target

    def session(self, session_id: str) -> bindings.Bound | None:
        bound = bindings.load_binding(session_id)
        if bound is not None and bound.active:
            _bindings.put(session_id, bound, tag=bound.id, seen_epoch=self.epoch)
        return bound

    def account(self, token: AuthenticatedToken, server: UpstreamTarget) -> AccountHeader | None:
        try:
            found = credential_header(user_id=token.owner_id, server_id=server.id)
        except ProviderUnreachable as exc:
            raise UpstreamUnavailable("The provider of your connected account for this server could "
                                      "not be reached to renew it; try again shortly.") from exc
        if found is None:  # the refusal's path: say whether the person must connect again
            raise AccountNotConnected(server=server.name, connect_url=connect_url(),
                                      broken=is_broken(user_id=token.owner_id, server_id=server.id))
        _accounts.put((token.owner_id, server.id), found, seen_epoch=self.epoch, until=found.until,
                      tag=account_key(user_id=token.owner_id, server_id=server.id))
        return found


def _digest(credential: Credential) -> str:
    return hashlib.sha256(credential.raw.encode()).hexdigest()


class Limits:
    """One request's rate-limit hits: noted by ``admit`` where its rules reach them, counted once
    each, together, when ``admit_fast`` settles them (one Redis round trip that never blocks the
    event loop, however many lookups admission took).

    Settled before the database is asked (a client over its limit never costs a query) and after
    admission, whichever way it went; a limit that is over answers instead of any refusal ``admit``
    raised after noting it, as if it had been counted where it was noted. The per-token count
    includes a request its client's per-IP limit refused (both are counted in the one trip).
    """

    def __init__(self, client_ip: str | None) -> None:
        self.client_ip = client_ip or ""
        self._noted: dict[str, tuple[str, str]] = {}
        self._counted: set[str] = set()
        self._token_subject: tuple[AuthenticatedToken, str] | None = None

    def hit_ip(self) -> None:
        self._noted.setdefault("ip", (self.client_ip, settings.IP_RATE))

    def hit_token(self, token: AuthenticatedToken, server: str) -> None:
        self._noted.setdefault("token", (token.jti, settings.TOKEN_RATE))
        self._token_subject = (token, server)

    async def settle(self) -> None:
        due = [(bucket, key, rate) for bucket, (key, rate) in self._noted.items()
               if bucket not in self._counted]
        if not due:
            return
        self._counted.update(bucket for bucket, _, _ in due)
        try:
            await ratelimit.hit_all(due)
        except RateLimited as refused:
            if refused.bucket == "token" and self._token_subject is not None:
                token, server = self._token_subject
                refused.with_subject(token=token, server=server)
            raise


def admit(
    *,
    limits: Limits,
    credential: Credential | None,
    server_name: str | None,
    session_id: str | None,
    transport: Transport,
    lookups: Lookups,
) -> Admission:
    """Admit a request to ``transport``'s endpoint, or raise the ``Refusal`` that answers it.

    The rules, stated once; ``lookups`` says where the answers come from (caches on the event
    loop, or the database on the gateway's threads). A refusal raised once the token is known
    names it (and the server), so its audit row does.
    """
    limits.hit_ip()
    # A challenge names the metadata of the endpoint called, so OAuth clients ask for its resource.
    endpoint_path = transport.client_path(server_name) if server_name else ""
    if credential is None:
        raise Unauthorized(presented=False).at(endpoint_path)
    if len(credential.raw) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized("The token is too long to be a Gatehouse token.", presented=True).at(endpoint_path)
    try:
        token = lookups.token(credential)
    except Unauthorized as refusal:
        refusal.at(endpoint_path)
        raise
    try:
        limits.hit_token(token, server_name or token.scope.only_server() or "")
        name = server_name or token.scope.only_server()
        if name is None:
            raise BadRequest(
                "This token is scoped to several servers; use /mcp/<server>/.", code="server_required"
            )
        if not token.scope.allows_server(name):
            raise InsufficientScope(f"This token is not scoped to the server {name!r}.",
                                    resource_path=endpoint_path)
        server = lookups.server(name)
        if server is None:
            raise UnknownServer(f"No enabled upstream server named {name!r}.")
        if server.transport.endpoint_name != transport.name:
            spoken = server.transport
            raise BadRequest(
                f"The server {name!r} speaks {spoken.label}; use {spoken.client_path(name)}.",
                code="wrong_transport",
            )
        account = None
        if server.user_credential is not None:
            found = lookups.account(token, server)
            if found is None:  # never an anonymous request to a server that wants the caller's own
                raise AccountNotConnected(server=name, connect_url=connect_url())
            account = (found.name, found.value)
        binding = None
        if session_id:
            binding = bindings.check_binding(
                lookups.session(session_id[:64]), token=token, server_id=server.id,
                transport=server.transport.name,
            )
            caches.touch_session(binding.id)
        caches.note_token_used(token.token_id)
    except Refusal as refusal:
        refusal.with_subject(token=token, server=server_name or token.scope.only_server() or "")
        raise
    # Usually a cache hit: no signing, no query (``tokens.assertions``).
    identity = identity_header(token=token, server=server, session_id=binding.id if binding else "")
    return Admission(token=token, server=server, binding=binding, identity=identity, account=account)


async def admit_fast(
    *,
    client_ip: str | None,
    credential: Credential | None,
    server_name: str | None,
    session_id: str | None,
    transport: Transport,
) -> Admission:
    """``admit`` from the caches on the event loop; on any miss, once more from the database."""
    caches.ensure_following(run_db, flush_noted)
    limits = Limits(client_ip)
    asked: dict[str, Any] = {"limits": limits, "credential": credential, "server_name": server_name,
             "session_id": session_id, "transport": transport}
    try:
        try:
            admission = admit(**asked, lookups=_CACHED)
        except _Miss:
            await limits.settle()
            admission = await run_db(_admit_from_database, asked=asked)
    except Refusal:
        await limits.settle()
        raise
    await limits.settle()
    return admission


def _admit_from_database(*, asked: dict[str, Any]) -> Admission:
    return admit(**asked, lookups=DatabaseLookups())


_CACHED = Lookups()


async def flush_noted() -> None:
    """Write what requests noted (sessions' last-seen, tokens' last-used) in one hop."""
    touched, used = caches.take_noted()
    if not (touched or used):
        return
    try:
        await run_db(_write_noted, touched=touched, used=used)
    except BaseException:
        caches.put_back(touched, used)
        raise


def _write_noted(*, touched: dict[str, datetime], used: dict[int, datetime]) -> None:
    if touched:
        bindings.touch_many(touched)
    if used:
        mark_tokens_used(used)


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
    return Recheck(good_tokens=good, active_sessions=bindings.active_session_ids(session_ids),
                   revoked_at=revoked_at)

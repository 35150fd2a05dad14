"""Session lifecycle writes: end a session (client close, expiry, admin terminate, dead token).

Open streams of a session re-check its status at least every 0.5 s and close themselves when it
is no longer active, so ending a session here reaches every gateway instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import KombuError

from audit import events
from audit.services import record
from gateway.models import SessionBinding
from tokens.assertions import identity_header
from tokens.expiry import SWEEP_ACTOR
from tokens.models import Token
from upstreams import http as upstream_http
from upstreams import transports
from upstreams.target import target_of

logger = logging.getLogger("gatehouse.gateway")

_END_EVENTS = {
    SessionBinding.Status.CLOSED: events.SESSION_CLOSED,
    SessionBinding.Status.EXPIRED: events.SESSION_EXPIRED,
    SessionBinding.Status.TERMINATED: events.SESSION_TERMINATED,
    SessionBinding.Status.REVOKED: events.SESSION_EXPIRED,
}

# Upstream answers worth another DELETE later; anything else (200, 404, 405) settles it.
_TRANSIENT_UPSTREAM_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class UpstreamDeleteFailed(Exception):
    """The upstream could not be told that a session ended; worth retrying later."""


@dataclass(frozen=True)
class EndedSession:
    session_id: str
    status: str
    reason: str
    upstream_delete_status: int | None
    upstream_delete_failed: bool


@dataclass(frozen=True)
class SessionSweep:
    """What one sweep ended; ``retry_upstream`` lists sessions whose upstream DELETE failed."""

    ended: list[EndedSession] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ended)

    @property
    def retry_upstream(self) -> list[str]:
        return [s.session_id for s in self.ended if s.upstream_delete_failed]


def _active_for_update(*, skip_locked: bool = False) -> QuerySet[SessionBinding]:
    # of=("self",): lock only the session rows, never the joined token, server or user.
    return (
        SessionBinding.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("server", "token__owner")
        .filter(status=SessionBinding.Status.ACTIVE)
    )


def _mark_ended(binding: SessionBinding, *, status: str, reason: str, at: datetime) -> None:
    binding.status = status
    binding.ended_at = at
    binding.end_reason = reason[:200]
    binding.save(update_fields=["status", "ended_at", "end_reason"])


def _finish(binding: SessionBinding, *, actor: str, notify_upstream: bool) -> EndedSession:
    """After the status is committed: tell the upstream (best effort), then audit."""
    upstream_status = None
    failed = False
    # A stream-bound session (legacy SSE) has no upstream DELETE: it ends when its stream closes.
    if notify_upstream and binding.upstream_session_id and _ends_upstream(binding):
        try:
            upstream_status = _delete_upstream_session(binding)
        except UpstreamDeleteFailed:
            failed = True
    record(
        event=_END_EVENTS[SessionBinding.Status(binding.status)],
        actor=actor,
        token_jti=binding.token.jti,
        owner=binding.token.owner.get_username(),
        server=binding.server.name,
        session_id=binding.pk,
        client_ip=binding.client_ip,
        user_agent=binding.user_agent,
        detail={
            "reason": binding.end_reason,
            "status": str(binding.status),
            "upstream_delete_status": upstream_status,
            "upstream_delete_failed": failed,
        },
    )
    return EndedSession(
        session_id=binding.pk,
        status=str(binding.status),
        reason=binding.end_reason,
        upstream_delete_status=upstream_status,
        upstream_delete_failed=failed,
    )


def end_session(
    *,
    session_id: str,
    status: SessionBinding.Status,
    reason: str,
    actor: str,
    notify_upstream: bool,
) -> bool:
    """Mark an active session ended and audit it; returns False if it was already ended.

    With ``notify_upstream`` the upstream gets a DELETE for its own session id; a failing upstream
    does not keep the session alive on our side, and a worker retries the DELETE with backoff.
    """
    if status == SessionBinding.Status.ACTIVE:
        raise ValueError("end_session needs a final status")
    with transaction.atomic():
        binding = _active_for_update().filter(pk=session_id).first()
        if binding is None:
            return False
        _mark_ended(binding, status=status, reason=reason, at=timezone.now())
    ended = _finish(binding, actor=actor, notify_upstream=notify_upstream)
    if ended.upstream_delete_failed:
        queue_upstream_retries([ended.session_id])
    return True


def queue_upstream_retries(session_ids: Iterable[str]) -> None:
    """Hand failed upstream DELETEs to a worker (``delete_upstream_session`` backs off up to 8 times).

    A broker that cannot take the task only costs the upstream its own session expiry, so it is
    logged and never fails the caller (an admin's terminate, a sweep).
    """
    from gateway.tasks import delete_upstream_session  # the tasks module imports this one

    for session_id in session_ids:
        try:
            delete_upstream_session.delay(session_id=session_id)
        except (KombuError, OSError) as exc:  # broker unreachable, or its folder not writable
            logger.warning(
                "upstream DELETE retry not queued",
                extra={"session_id": session_id, "error": type(exc).__name__},
            )


def _end_in_batches(
    *,
    stale: Q,
    classify: Callable[[SessionBinding], tuple[str, str]],
    actor: str,
    batch_size: int,
) -> SessionSweep:
    """Claim active sessions matching ``stale`` a batch at a time, end them, then notify upstream.

    Rows another worker holds are skipped (PostgreSQL ``SKIP LOCKED``; SQLite's IMMEDIATE
    transactions serialise sweeps), and a claimed row is no longer active, so concurrent sweeps
    never end, DELETE or audit the same session twice.
    """
    ended: list[EndedSession] = []
    while True:
        with transaction.atomic():
            claimable = _active_for_update(skip_locked=True).filter(stale).order_by("last_seen_at")
            batch = list(claimable[:batch_size])
            at = timezone.now()
            for binding in batch:
                status, reason = classify(binding)
                _mark_ended(binding, status=status, reason=reason, at=at)
        if not batch:
            return SessionSweep(ended=ended)
        # The sessions are already ended for every gateway instance; a slow or dead upstream
        # only delays its own DELETE.
        ended.extend(_finish(binding, actor=actor, notify_upstream=True) for binding in batch)


# Why a session whose token died ends, by ``Token.liveness``: revoked and rotated-out tokens end
# theirs as revoked, expired ones as expired (both audited ``session.expired``).
_TOKEN_DEATHS = {
    Token.Liveness.REVOKED: (SessionBinding.Status.REVOKED, "token revoked"),
    Token.Liveness.ROTATED_OUT: (SessionBinding.Status.REVOKED, "token revoked"),
    Token.Liveness.EXPIRED: (SessionBinding.Status.EXPIRED, "token expired"),
}


def expire_sessions(*, now: datetime | None = None, batch_size: int = 200) -> SessionSweep:
    """End every active session that is idle too long, too old, or whose token no longer works.

    This is the one sweep that ends sessions. Idle means no request for ``SESSION_IDLE_SECONDS``;
    too old means started more than ``SESSION_MAX_SECONDS`` ago; a dead token is one
    ``Token.objects.dead(now)`` finds (revoked, rotated out, expired, whether or not the token
    sweep has relabelled it yet), so tokens never has to call into the gateway. Open streams do
    not wait for this: they re-check their token every 0.4 s (``gateway.watch``). Each ended
    session gets an upstream DELETE and an audit event.
    """
    now = now or timezone.now()
    idle_cutoff = now - timedelta(seconds=settings.SESSION_IDLE_SECONDS)
    age_cutoff = now - timedelta(seconds=settings.SESSION_MAX_SECONDS)
    dead_token = Token.dead_q(now, through="token")
    stale = Q(last_seen_at__lt=idle_cutoff) | Q(created_at__lt=age_cutoff) | dead_token

    def classify(binding: SessionBinding) -> tuple[str, str]:
        death = _TOKEN_DEATHS.get(binding.token.liveness(now))
        if death is not None:
            return death
        if binding.created_at < age_cutoff:
            return SessionBinding.Status.EXPIRED, f"older than {settings.SESSION_MAX_SECONDS}s"
        return SessionBinding.Status.EXPIRED, f"idle for more than {settings.SESSION_IDLE_SECONDS}s"

    return _end_in_batches(stale=stale, classify=classify, actor=SWEEP_ACTOR, batch_size=batch_size)


def retry_upstream_delete(*, session_id: str) -> int | None:
    """DELETE an ended session upstream again; raises ``UpstreamDeleteFailed`` if still failing.

    Returns the upstream status, or None when there is nothing to delete (still active, unknown
    session or no upstream session id).
    """
    binding = (
        SessionBinding.objects.select_related("server")
        .exclude(status=SessionBinding.Status.ACTIVE)
        .filter(pk=session_id)
        .first()
    )
    if binding is None or not binding.upstream_session_id or not _ends_upstream(binding):
        return None
    status = _delete_upstream_session(binding)
    logger.info(
        "upstream DELETE retried",
        extra={"server": binding.server.name, "session_id": binding.pk, "upstream_status": status},
    )
    return status


def _delete_upstream_session(binding: SessionBinding) -> int:
    """DELETE the upstream's session; raises ``UpstreamDeleteFailed`` on a transient failure."""
    target = target_of(binding.server)
    # The gateway ends the session on behalf of its owner: the DELETE carries their identity too.
    identity = identity_header(token=binding.token, server=target, session_id=binding.pk)
    try:
        status = upstream_http.delete_session(
            target,
            upstream_session_id=binding.upstream_session_id,
            protocol_version=binding.protocol_version,
            identity=identity,
        )
    except httpx.HTTPError as exc:
        logger.warning(
            "upstream DELETE failed",
            extra={"server": binding.server.name, "session_id": binding.pk, "error": type(exc).__name__},
        )
        raise UpstreamDeleteFailed(type(exc).__name__) from exc
    if status in _TRANSIENT_UPSTREAM_STATUSES:
        logger.warning(
            "upstream DELETE failed",
            extra={
                "server": binding.server.name,
                "session_id": binding.pk,
                "upstream_status": status,
            },
        )
        raise UpstreamDeleteFailed(f"upstream answered {status}")
    return status


def _ends_upstream(binding: SessionBinding) -> bool:
    return transports.get(binding.transport).ends_upstream_session

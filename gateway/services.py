"""Session lifecycle writes: end a session (client close, expiry, admin terminate, dead token).

Open streams of a session re-check its status at least every 0.5 s and close themselves when it
is no longer active, so ending a session here reaches every gateway instance.

Ending a session is one transaction: the status change, its audit event and, when the upstream
must hear of it, an outbox row (``SessionEndOutbox``) for the upstream DELETE. A crash after the
commit loses nothing: the DELETE is sent from the outbox by whoever ended the session and, for
whatever is left (a crash, a failing upstream), by every session sweep. So a session is ended and
audited exactly once, and its upstream DELETE is sent at least once, until it succeeds: a worker
that dies between sending it and marking the row done sends it again after its lease runs out
(a DELETE is idempotent; an upstream that already forgot the session answers 404, which settles
it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import events
from audit.services import record_many
from gateway.models import SessionBinding, SessionEndOutbox
from gateway.sessions.outbox import deliver_upstream_deletes, ends_upstream
from tokens.expiry import SWEEP_ACTOR
from tokens.models import Token

logger = logging.getLogger("gatehouse.gateway")

_END_EVENTS = {
    SessionBinding.Status.CLOSED: events.SESSION_CLOSED,
    SessionBinding.Status.EXPIRED: events.SESSION_EXPIRED,
    SessionBinding.Status.TERMINATED: events.SESSION_TERMINATED,
    SessionBinding.Status.REVOKED: events.SESSION_EXPIRED,
}


@dataclass(frozen=True)
class EndedSession:
    session_id: str
    status: str
    reason: str
    upstream_delete_status: int | None
    upstream_delete_failed: bool


@dataclass(frozen=True)
class SessionSweep:
    """What one sweep ended; ``retry_upstream`` lists ended sessions whose upstream DELETE is still owed.

    ``resumed`` counts outbox DELETEs left by earlier work (a crash, a failing upstream) that this
    sweep sent.
    """

    ended: list[EndedSession] = field(default_factory=list)
    resumed: int = 0

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


def _owes_upstream_delete(binding: SessionBinding) -> bool:
    # A stream-bound session (legacy SSE) has no upstream DELETE: it ends when its stream closes.
    return bool(binding.upstream_session_id) and ends_upstream(binding)


def _end_all(
    bindings: list[tuple[SessionBinding, str, str]], *, actor: str, notify_upstream: bool, at: datetime
) -> list[str]:
    """Inside the caller's transaction: mark each ``(binding, status, reason)`` ended, queue its
    upstream DELETE in the outbox and append its audit event. Returns the sessions owing a DELETE.

    The audit append comes last: it takes the chain lock, held until the transaction ends.
    """
    owed: list[str] = []
    audit: list[dict[str, Any]] = []
    for binding, status, reason in bindings:
        binding.status = status
        binding.ended_at = at
        binding.end_reason = reason[:200]
        binding.save(update_fields=["status", "ended_at", "end_reason"])
        queued = notify_upstream and _owes_upstream_delete(binding)
        if queued:
            owed.append(binding.pk)
        audit.append({
            "event": _END_EVENTS[SessionBinding.Status(binding.status)],
            "actor": actor,
            "token_jti": binding.token.jti,
            "owner": binding.token.owner.get_username(),
            "server": binding.server.name,
            "session_id": binding.pk,
            "client_ip": binding.client_ip,
            "user_agent": binding.user_agent,
            "detail": {
                "reason": binding.end_reason,
                "status": str(binding.status),
                # The DELETE's outcome is on the outbox row (and in the log), not here: the
                # event commits with the status change, before the DELETE is sent.
                "upstream_delete": "queued" if queued else "none",
            },
        })
    SessionEndOutbox.objects.bulk_create(
        [SessionEndOutbox(session_id=session_id, next_attempt_at=at) for session_id in owed]
    )
    if audit:
        record_many(audit)
    return owed


def end_session(
    *,
    session_id: str,
    status: SessionBinding.Status,
    reason: str,
    actor: str,
    notify_upstream: bool,
) -> bool:
    """Mark an active session ended and audit it; returns False if it was already ended.

    With ``notify_upstream`` the upstream gets a DELETE for its own session id, sent from the
    outbox right after the commit; a failing upstream does not keep the session alive on our
    side, and the session sweep tries the DELETE again with backoff.
    """
    if status == SessionBinding.Status.ACTIVE:
        raise ValueError("end_session needs a final status")
    with transaction.atomic():
        binding = _active_for_update().filter(pk=session_id).first()
        if binding is None:
            return False
        owed = _end_all([(binding, status, reason)], actor=actor, notify_upstream=notify_upstream,
                        at=timezone.now())
    if owed:
        deliver_upstream_deletes(session_ids=owed)
    return True


def _end_in_batches(
    *,
    stale: Q,
    classify: Callable[[SessionBinding], tuple[str, str]],
    actor: str,
    batch_size: int,
) -> list[EndedSession]:
    """Claim active sessions matching ``stale`` a batch at a time, end them, then notify upstream.

    Rows another worker holds are skipped (PostgreSQL ``SKIP LOCKED``; SQLite's IMMEDIATE
    transactions serialise sweeps), and a claimed row is no longer active, so concurrent sweeps
    never end or audit the same session twice; the outbox lease keeps them from DELETEing it twice.
    """
    ended: list[EndedSession] = []
    while True:
        with transaction.atomic():
            claimable = _active_for_update(skip_locked=True).filter(stale).order_by("last_seen_at")
            batch = list(claimable[:batch_size])
            at = timezone.now()
            owed = _end_all([(b, *classify(b)) for b in batch], actor=actor, notify_upstream=True, at=at)
        if not batch:
            return ended
        # The batch is ended and audited for every gateway instance; a slow or dead upstream
        # only delays its own DELETE, and a crash from here on leaves the outbox to the next sweep.
        delivered = {d.session_id: d for d in deliver_upstream_deletes(session_ids=owed)}
        for binding in batch:
            delivery = delivered.get(binding.pk)
            ended.append(EndedSession(
                session_id=binding.pk,
                status=str(binding.status),
                reason=binding.end_reason,
                upstream_delete_status=delivery.upstream_status if delivery else None,
                # Owed but not delivered (failed, or another worker holds it) counts as pending.
                upstream_delete_failed=binding.pk in owed and (delivery is None or delivery.failed),
            ))


# Why a session whose token died ends, by ``Token.liveness``: revoked and rotated-out tokens end
# theirs as revoked, expired ones as expired (both audited ``session.expired``).
_TOKEN_DEATHS = {
    Token.Liveness.REVOKED: (SessionBinding.Status.REVOKED, "token revoked"),
    Token.Liveness.ROTATED_OUT: (SessionBinding.Status.REVOKED, "token revoked"),
    Token.Liveness.EXPIRED: (SessionBinding.Status.EXPIRED, "token expired"),
}


def expire_sessions(*, now: datetime | None = None, batch_size: int | None = None) -> SessionSweep:
    """End every active session that is idle too long, too old, or whose token no longer works.

    This is the one sweep that ends sessions. Idle means no request for ``SESSION_IDLE_SECONDS``;
    too old means started more than ``SESSION_MAX_SECONDS`` ago; a dead token is one
    ``Token.objects.dead(now)`` finds (revoked, rotated out, expired, whether or not the token
    sweep has relabelled it yet), so tokens never has to call into the gateway. Open streams do
    not wait for this: they re-check their token every 0.4 s (``gateway.sessions.watch``). Each ended
    session gets an audit event and an upstream DELETE. First, the sweep sends the outbox's
    DELETEs that are due: those a crashed worker left, and retries of failed ones.
    """
    resumed = deliver_upstream_deletes()
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

    ended = _end_in_batches(
        stale=stale, classify=classify, actor=SWEEP_ACTOR,
        batch_size=batch_size or settings.SWEEP_BATCH_SIZE,
    )
    return SessionSweep(ended=ended, resumed=len(resumed))


# --- The outbox: upstream DELETEs owed for ended sessions -----------------------------------



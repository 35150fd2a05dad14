"""The session-end outbox: the upstream DELETEs owed by ended sessions, delivered at least once.

Ending a session (``gateway.services``) writes its status, its audit event and, when the upstream
keeps a session of its own, a ``SessionEndOutbox`` row, in one transaction. This module delivers
those rows: each is claimed with a lease by one conditional UPDATE (no transaction held open
during HTTP), then marked done, or given a backoff and retried by the next sweep, and given up
after ``DELETE_MAX_ATTEMPTS`` with an ERROR log line. A worker killed mid-delivery leaves its row
claimed; after the lease another sweep sends it again, so a DELETE is at least once, and the
session end and its audit event exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from gateway.models import SessionBinding, SessionEndOutbox
from tokens.assertions import identity_header
from upstreams import http as upstream_http
from upstreams import transports
from upstreams.accounts.services import credential_header
from upstreams.target import target_of

logger = logging.getLogger("gatehouse.gateway")

# Upstream answers worth another DELETE later; anything else (200, 404, 405) settles it.
_TRANSIENT_UPSTREAM_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# A failed DELETE is tried again after 5 s, 10 s, 20 s … at most 10 min apart, 8 tries in all;
# the sweep sends what is due, so the real spacing is rounded up to GATEHOUSE_SWEEP_SECONDS.
DELETE_MAX_ATTEMPTS = 8


_BACKOFF_FIRST_SECONDS = 5


_BACKOFF_MAX_SECONDS = 600


class UpstreamDeleteFailed(Exception):
    """The upstream could not be told that a session ended; worth retrying later."""


@dataclass(frozen=True)
class Delivery:
    """One attempt at an outbox row's DELETE: the upstream's status, or that it failed."""

    session_id: str
    upstream_status: int | None
    failed: bool


def _lease() -> timedelta:
    # Longer than one DELETE can take (httpx applies the timeout to connect, write and read).
    return timedelta(seconds=4 * settings.UPSTREAM_TIMEOUT_SECONDS + 5)


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(_BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1), _BACKOFF_MAX_SECONDS))


def deliver_upstream_deletes(
    *, session_ids: Iterable[str] | None = None, due_only: bool = True
) -> list[Delivery]:
    """Send the outbox's pending DELETEs (all that are due, or those of ``session_ids``).

    Each row is claimed with a lease before its DELETE goes out (one conditional UPDATE, so two
    workers never send the same one), then marked done, or scheduled again with backoff; after
    ``DELETE_MAX_ATTEMPTS`` failures it is given up (logged as an error; the upstream's own
    session expiry is left to clean up).
    """
    now = timezone.now()
    pending = SessionEndOutbox.objects.filter(done_at__isnull=True).filter(_unclaimed(now))
    if session_ids is not None:
        pending = pending.filter(session_id__in=list(session_ids))
    if due_only:
        pending = pending.filter(next_attempt_at__lte=now)
    rows = list(pending.select_related("session__server").order_by("next_attempt_at"))
    return [d for d in (_deliver(row) for row in rows) if d is not None]


def _deliver(row: SessionEndOutbox) -> Delivery | None:
    now = timezone.now()
    claimed = (
        SessionEndOutbox.objects.filter(pk=row.pk, done_at__isnull=True)
        .filter(_unclaimed(now))
        .update(claimed_until=now + _lease(), attempts=F("attempts") + 1)
    )
    if not claimed:
        return None  # another worker has it, or it was just settled
    attempts = row.attempts + 1
    binding = row.session
    try:
        status = _delete_upstream_session(binding)
    except UpstreamDeleteFailed as exc:
        _settle_failure(row, attempts=attempts, error=str(exc))
        return Delivery(session_id=binding.pk, upstream_status=None, failed=True)
    SessionEndOutbox.objects.filter(pk=row.pk).update(
        done_at=timezone.now(), claimed_until=None, upstream_status=status, last_error=""
    )
    if attempts > 1:
        logger.info(
            "upstream DELETE retried",
            extra={"server": binding.server.name, "session_id": binding.pk, "upstream_status": status,
                   "attempt": attempts},
        )
    return Delivery(session_id=binding.pk, upstream_status=status, failed=False)


def _settle_failure(row: SessionEndOutbox, *, attempts: int, error: str) -> None:
    now = timezone.now()
    extra = {"server": row.session.server.name, "session_id": row.session_id, "attempt": attempts}
    if attempts >= DELETE_MAX_ATTEMPTS:
        SessionEndOutbox.objects.filter(pk=row.pk).update(
            done_at=now, claimed_until=None, last_error=f"gave up: {error}"[:200]
        )
        logger.error("upstream DELETE given up", extra=extra)
        return
    delay = _backoff(attempts)
    SessionEndOutbox.objects.filter(pk=row.pk).update(
        next_attempt_at=now + delay, claimed_until=None, last_error=error[:200]
    )
    logger.warning("upstream DELETE retry scheduled", extra={**extra, "retry_in": delay.total_seconds()})


def retry_upstream_delete(*, session_id: str) -> int | None:
    """Send an ended session's owed DELETE now, backoff or not; raises ``UpstreamDeleteFailed``
    if it still fails.

    Returns the upstream status, or None when nothing is owed (still active, unknown session, no
    upstream session id, already delivered, or another worker is sending it).
    """
    deliveries = deliver_upstream_deletes(session_ids=[session_id], due_only=False)
    if not deliveries:
        return None
    if deliveries[0].failed:
        raise UpstreamDeleteFailed(f"the upstream DELETE of session {session_id} failed again")
    return deliveries[0].upstream_status


def _delete_upstream_session(binding: SessionBinding) -> int:
    """DELETE the upstream's session; raises ``UpstreamDeleteFailed`` on a transient failure."""
    target = target_of(binding.server)
    # The gateway ends the session on behalf of its owner: the DELETE carries their identity too.
    identity = identity_header(token=binding.token, server=target, session_id=binding.pk)
    account = (credential_header(user_id=binding.token.owner_id, server_id=target.id)
               if target.user_credential is not None else None)
    caller = [*([identity] if identity else []), *([(account.name, account.value)] if account else [])]
    try:
        status = upstream_http.delete_session(
            target,
            upstream_session_id=binding.upstream_session_id,
            protocol_version=binding.protocol_version,
            caller=caller,
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


def ends_upstream(binding: SessionBinding) -> bool:
    return transports.get(binding.transport).ends_upstream_session

"""Celery tasks for gateway sessions: thin callers of ``gateway.services`` and ``gateway.sessions.outbox``."""

from __future__ import annotations

import logging

from celery import shared_task

from core import changes, heartbeats
from gateway import services
from gateway.sessions import outbox

logger = logging.getLogger("gatehouse.gateway")


@shared_task(ignore_result=True)
def expire_sessions() -> int:
    """Beat: send the outbox's due upstream DELETEs, then end idle, too-old and dead-token sessions.

    Each run is also the worker's heartbeat (``/ready`` reports when it stops).
    """
    heartbeats.beat(heartbeats.SWEEP)
    changes.prune()  # the change feed's old rows (``core.changes``)
    sweep = services.expire_sessions()
    if sweep.count or sweep.resumed:
        logger.info(
            "sessions expired",
            extra={"count": sweep.count, "upstream_retry": len(sweep.retry_upstream),
                   "upstream_resumed": sweep.resumed},
        )
    return sweep.count


@shared_task(ignore_result=True)
def delete_upstream_session(*, session_id: str) -> int | None:
    """Send one ended session's owed upstream DELETE now.

    Kept for messages queued by earlier versions; retries now live in the outbox
    (``gateway.models.SessionEndOutbox``), which every sweep works through.
    """
    try:
        return outbox.retry_upstream_delete(session_id=session_id)
    except outbox.UpstreamDeleteFailed:
        return None  # the outbox row keeps its backoff; the sweep tries again

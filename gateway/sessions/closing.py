"""Ending a legacy SSE session when its event stream closes, even while the database is down.

The open event stream *is* a legacy SSE session, so closing the stream must end the session. If
the database cannot take that write at that moment (an outage, which also ends the stream: see
``gateway.sessions.watch``), the session would stay ``active`` with nobody holding it. Instead it joins
this process's list of closes to retry: one background task tries them all every
``RETRY_SECONDS`` until they succeed or ``GIVE_UP_SECONDS`` have passed, so the session ends
within about a second after the database is back. If this process stops first (or gives up),
the session sweep ends the session by idle expiry (``GATEHOUSE_SESSION_IDLE_SECONDS`` after its
last message), as it ends any abandoned session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from core.database import UNAVAILABLE_ERRORS
from gateway.admission.db_pool import run_db
from gateway.models import SessionBinding
from gateway.pipeline.context import Context
from gateway.services import end_session
from gateway.sessions.lifecycle import close_session

logger = logging.getLogger("gatehouse.gateway")

RETRY_SECONDS = 1.0
GIVE_UP_SECONDS = 15 * 60.0


@dataclass(frozen=True)
class _Close:
    session_id: str
    reason: str
    actor: str
    since: float


_pending: dict[str, _Close] = {}
_retrier: asyncio.Task[None] | None = None


async def close_stream_session(ctx: Context, *, session_id: str, reason: str) -> None:
    """End the session of a closed event stream now, or as soon as the database answers again."""
    try:
        await close_session(ctx, session_id=session_id, reason=reason)
    except UNAVAILABLE_ERRORS as exc:
        assert ctx.admission is not None
        logger.warning("session close deferred: the database is unavailable",
                       extra={"session_id": session_id, "error": type(exc).__name__})
        _pending[session_id] = _Close(session_id=session_id, reason=reason,
                                      actor=ctx.admission.token.display_prefix, since=time.monotonic())
        _ensure_retrier()


def pending_closes() -> list[str]:
    return sorted(_pending)


def _ensure_retrier() -> None:
    global _retrier
    if _retrier is None or _retrier.done():
        _retrier = asyncio.get_running_loop().create_task(_retry(), name="gateway-session-close-retry")


async def _retry() -> None:
    while _pending:
        await asyncio.sleep(RETRY_SECONDS)
        batch = list(_pending.values())
        try:
            await run_db(_close_all, closes=batch)
        except UNAVAILABLE_ERRORS:
            now = time.monotonic()
            for close in batch:
                if now - close.since > GIVE_UP_SECONDS:
                    _pending.pop(close.session_id, None)
                    logger.error("session close given up; idle expiry will end the session",
                                 extra={"session_id": close.session_id})
            continue
        for close in batch:
            _pending.pop(close.session_id, None)
        logger.info("deferred session closes done", extra={"count": len(batch)})


def _close_all(*, closes: list[_Close]) -> None:
    for close in closes:
        end_session(session_id=close.session_id, status=SessionBinding.Status.CLOSED, reason=close.reason,
                    actor=close.actor, notify_upstream=False)

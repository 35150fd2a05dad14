"""Open streams re-check their token and session, so revocation reaches every instance within 1 s.

One supervisor per event loop ticks every ``INTERVAL`` seconds while any stream is open (and at
once when the change feed says a token or a session changed, ``nudge``) and
re-checks all of them in a single ``sync_to_async`` hop (``authenticate_token`` for each distinct
token, one query for the session statuses), instead of one hop per stream or per event.

The re-check fails closed: a stream whose token could not be re-checked for ``RECHECK_DEADLINE``
seconds (the database is down, or answers too slowly) is ended with reason ``recheck_failed``
instead of streaming on unchecked; a revoked token cannot outlive the promise by way of an outage.
A single failed tick (a dropped connection, reopened on the next) ends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from core import changes, metrics
from gateway.admission.db_pool import run_db
from gateway.admission.rules import Recheck, recheck

logger = logging.getLogger("gatehouse.gateway")

# A tick plus the re-check query stays under 0.5 s, well inside the 1 s a revocation may take.
INTERVAL = 0.4
# The revocation promise: no stream runs longer than this past its last successful re-check.
RECHECK_DEADLINE = 1.0

# Why a watch ended a stream (``StreamWatch.reason``).
TOKEN_INVALID = "token_invalid"
SESSION_ENDED = "session_ended"
RECHECK_FAILED = "recheck_failed"


def _loop_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class StreamWatch:
    raw_token: str
    session_id: str | None
    reason: str = ""
    # When the token was last known good (monotonic): at admission, then at each re-check.
    verified_at: float = field(default_factory=time.monotonic)
    # Done when the stream is ended: waited on next to the stream's work without a task of its
    # own (a task per open stream is about 2 KB of the 5,000 idle streams' memory).
    ended: asyncio.Future[None] = field(default_factory=_loop_future, repr=False)

    @property
    def is_ended(self) -> bool:
        return self.ended.done()

    def end(self, reason: str) -> None:
        if not self.ended.done():
            self.reason = reason
            self.ended.set_result(None)


class StreamSupervisor:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._watches: set[StreamWatch] = set()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._loop = loop or asyncio.get_running_loop()
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Re-check now rather than at the next tick (from any thread)."""
        if self._watches and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def watch(self, *, raw_token: str, session_id: str | None) -> StreamWatch:
        entry = StreamWatch(raw_token=raw_token, session_id=session_id)
        self._watches.add(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway-stream-supervisor")
        return entry

    def unwatch(self, entry: StreamWatch) -> None:
        self._watches.discard(entry)

    async def _run(self) -> None:
        check: asyncio.Future[Recheck] | None = None
        asked: list[tuple[StreamWatch, str | None]] = []
        asked_at = 0.0
        answered = threading.Event()
        while self._watches:
            if check is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=INTERVAL)
                self._wake.clear()
                # Judge each stream by the session it had when the query was built: a legacy SSE
                # stream learns its session id while a re-check may be in flight, and a session
                # the query never asked about must not count as ended (it is checked next tick).
                asked = [(w, w.session_id) for w in self._watches]
                if not asked:
                    break
                tokens = sorted({w.raw_token for w, _ in asked})
                session_ids = sorted({sid for _, sid in asked if sid})
                asked_at = time.monotonic()
                answered = threading.Event()
                check = asyncio.ensure_future(
                    run_db(_recheck, answered=answered, raw_tokens=tokens, session_ids=session_ids)
                )
            # A re-check that hangs (a database that stopped answering) is waited for a tick at a
            # time, never duplicated, while the streams it should vouch for run out of time. One
            # the database already answered is not overdue: a busy event loop (thousands of
            # streams opening at once) can see the answer late, and ending every stream for that
            # would be an outage of our own making; the answer is applied on the next wait.
            done, _ = await asyncio.wait({check}, timeout=INTERVAL)
            if not done:
                if not answered.is_set():
                    self._end_overdue()
                continue
            finished, check = check, None
            try:
                found = finished.result()
            except Exception:  # a DB outage must not kill the supervisor; retry next tick
                if not self._failing:
                    logger.exception("stream re-check failed")
                self._failing = True
                self._end_overdue()
                continue
            if self._failing:
                logger.warning("stream re-check works again")
                self._failing = False
            for entry, session_id in asked:
                entry.verified_at = max(entry.verified_at, asked_at)
                if entry.raw_token not in found.good_tokens:
                    if not entry.is_ended and entry.raw_token in found.revoked_at:
                        metrics.get().revoke_to_close_seconds.observe(
                            max(0.0, time.time() - found.revoked_at[entry.raw_token]))
                    entry.end(TOKEN_INVALID)
                elif session_id and session_id not in found.active_sessions:
                    entry.end(SESSION_ENDED)
        if check is not None:
            check.cancel()

    def _end_overdue(self) -> None:
        """Fail closed: end every stream that the next tick could not re-check within the promise."""
        now = time.monotonic()
        for entry in list(self._watches):
            if now + INTERVAL - entry.verified_at > RECHECK_DEADLINE:
                if not entry.is_ended:
                    logger.warning("stream ended: its token could not be re-checked",
                                   extra={"session_id": entry.session_id or ""})
                entry.end(RECHECK_FAILED)


def _recheck(*, answered: threading.Event, raw_tokens: list[str], session_ids: list[str]) -> Recheck:
    found = recheck(raw_tokens=raw_tokens, session_ids=session_ids)
    answered.set()
    return found


_supervisors: dict[asyncio.AbstractEventLoop, StreamSupervisor] = {}


def supervisor() -> StreamSupervisor:
    loop = asyncio.get_running_loop()
    found = _supervisors.get(loop)
    if found is None:
        for stale in [lp for lp in _supervisors if lp.is_closed()]:
            del _supervisors[stale]
        found = _supervisors[loop] = StreamSupervisor(loop)
    return found


def nudge(kind: str, key: str) -> None:
    """A token or a session changed (``core.changes``): every open stream re-checks now, so a
    revocation closes streams within one re-check query, not one tick plus a query."""
    if kind in (changes.TOKEN, changes.SESSION):
        for each in list(_supervisors.values()):
            each.nudge()

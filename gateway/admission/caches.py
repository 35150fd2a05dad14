"""The hot path's per-process caches, and the follower of the change feed that keeps them true.

Admission (``gateway.admission``) needs up to four answers from the database: is this token good
(``authenticate_token``), where is this server (``UpstreamTarget``), is this session bound to
this token (``sessions``), and for a server that takes each caller's own credential, what is
this person's (``upstreams.accounts``). In steady state each comes from a cache here instead, so a request
makes no database round trip at all. The caches never admit what the database would refuse:

- **Every change that could turn an answer into a refusal is published** on the change feed
  (``core.changes``) in the transaction that makes it. The publishing process forgets it the
  moment the transaction commits (the next request is refused); every gateway process reads the
  feed every 50 ms (``follow``) and forgets it too.
- **A cache answers only while the feed is followed**: when this process's last successful read
  of the feed is older than ``FEED_DEADLINE`` (the database is down or slow, or nothing follows
  it yet), every lookup misses and admission asks the database, request by request, as it did
  before these caches. ``/ready`` says which mode the process is in (``hot_path``). When the feed
  is read again after such a gap, every cache is emptied first (rows may have been missed).
- **No answer outlives its token**: a verdict is kept no longer than the token is usable
  (``expires_at``, the end of a rotation's grace), nor than ``TTL_SECONDS`` in any case.
- **A lookup that raced a change is not kept**: each put carries the change epoch read before
  the lookup began, and is dropped if any change was delivered since.

Refusals are never cached. Sizes are bounded (``MAX_ENTRIES`` each; full means emptied).

Writes leave the request too: a session's last-seen time and a token's last-used time are
noted in memory and written in one batch per ``FLUSH_SECONDS`` by the follower.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.utils import timezone

from core import changes

logger = logging.getLogger("gatehouse.gateway")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Past this since the last good read of the feed, caches stop answering (the database decides).
FEED_DEADLINE = 1.0
TTL_SECONDS = 300.0
MAX_ENTRIES = 10_000
# A session's last-seen time is at most this late in the database (idle expiry reads it).
FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_epoch = 0
_last_read = 0.0  # monotonic time of the last successful read of the feed (0: never)


def epoch() -> int:
    """The change epoch: read it before a lookup, hand it to ``put``."""
    return _epoch


def live() -> bool:
    """True while the feed is followed closely enough for the caches to answer."""
    return _last_read > 0 and time.monotonic() - _last_read < FEED_DEADLINE


@dataclass
class _Entry(Generic[V]):
    value: V
    tag: str
    until: float  # monotonic


class HotCache(Generic[K, V]):
    """A bounded map whose entries carry a tag (what change forgets them) and a deadline."""

    def __init__(self, name: str, *, kind: str) -> None:
        self.name = name
        self.kind = kind
        self._items: dict[K, _Entry[V]] = {}

    def get(self, key: K) -> V | None:
        if not live():
            return None
        found = self._items.get(key)
        if found is None:
            return None
        if time.monotonic() >= found.until:
            self._items.pop(key, None)
            return None
        return found.value

    def put(self, key: K, value: V, *, tag: str, seen_epoch: int, until: datetime | None = None) -> None:
        seconds = TTL_SECONDS
        if until is not None:
            seconds = min(seconds, (until - timezone.now()).total_seconds())
        if seconds <= 0:
            return
        with _lock:
            if seen_epoch != _epoch:  # a change was delivered while this was looked up
                return
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[key] = _Entry(value=value, tag=tag, until=time.monotonic() + seconds)

    def forget(self, tag: str) -> None:
        """Drop every entry tagged ``tag`` (``changes.ALL``: every entry). Callers hold ``_lock``."""
        if tag == changes.ALL:
            self._items.clear()
            return
        for key in [k for k, e in self._items.items() if e.tag == tag]:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


_caches: list[HotCache[object, object]] = []


def cache(name: str, *, kind: str) -> HotCache[K, V]:
    """A new cache forgetting its entries on changes of ``kind``."""
    if kind not in changes.KINDS:
        raise ValueError(f"Unknown change kind {kind!r}.")
    made: HotCache[K, V] = HotCache(name, kind=kind)
    _caches.append(made)  # type: ignore[arg-type]
    return made


_on_forget: list[Callable[[str, str], None]] = []


def also_on_change(callback: Callable[[str, str], None]) -> None:
    """Run ``callback(kind, key)`` after the caches forgot a change (open streams re-check)."""
    _on_forget.append(callback)


def forget(kind: str, key: str) -> None:
    """The change-feed handler: forget ``key`` of ``kind`` in every cache of that kind."""
    global _epoch
    with _lock:
        _epoch += 1
        for each in _caches:
            if each.kind == kind:
                each.forget(key)
    for callback in _on_forget:
        callback(kind, key)


def forget_everything() -> None:
    global _epoch
    with _lock:
        _epoch += 1
        for each in _caches:
            each.forget(changes.ALL)


# --- Writes noted on the request, written by the follower --------------------------------------

_touched_sessions: dict[str, datetime] = {}
_used_tokens: dict[int, datetime] = {}


def touch_session(session_id: str) -> None:
    _touched_sessions[session_id] = timezone.now()


def note_token_used(token_id: int) -> None:
    _used_tokens[token_id] = timezone.now()


def put_back(sessions: dict[str, datetime], tokens: dict[int, datetime]) -> None:
    """A batch that could not be written waits for the next one (newer notes win)."""
    with _lock:
        for sid, at in sessions.items():
            _touched_sessions.setdefault(sid, at)
        for tid, at in tokens.items():
            _used_tokens.setdefault(tid, at)


def take_noted() -> tuple[dict[str, datetime], dict[int, datetime]]:
    """What was noted since the last call, handed over once (the dicts are swapped, not copied)."""
    global _touched_sessions, _used_tokens
    with _lock:
        sessions, tokens = _touched_sessions, _used_tokens
        _touched_sessions, _used_tokens = {}, {}
    return sessions, tokens


# --- The follower ------------------------------------------------------------------------------


class Follower:
    """Reads the change feed every ``changes.POLL_SECONDS`` and applies it; one per event loop."""

    def __init__(self, run_db: Callable[..., object], flush: Callable[[], object]) -> None:
        self._run_db = run_db
        self._flush = flush
        self._after = -1  # newest id applied; -1 until the first read
        self._applied: set[int] = set()
        self._failing = False

    async def run(self) -> None:
        flushed_at = time.monotonic()
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database is down: caches stop answering at FEED_DEADLINE
                if not self._failing:
                    logger.warning("change feed unreadable: the gateway checks the database on every request")
                self._failing = True
            else:
                if self._failing:
                    logger.warning("change feed readable again: hot-path caches answer again")
                    self._failing = False
            if time.monotonic() - flushed_at >= FLUSH_SECONDS:
                flushed_at = time.monotonic()
                try:
                    await self._flush()  # type: ignore[misc]
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.warning("last-seen writes failed; retried next time", exc_info=True)
            await asyncio.sleep(changes.POLL_SECONDS)

    async def _read(self) -> None:
        global _last_read
        started = time.monotonic()
        gap = _last_read == 0 or started - _last_read >= FEED_DEADLINE
        if self._after < 0 or gap:
            # First read, or after a gap in which rows may have come and gone: start afresh.
            newest: int = await self._run_db(changes.newest_id)  # type: ignore[misc]
            forget_everything()
            self._after, self._applied = newest, set()
        else:
            rows: list[changes.Seen] = await self._run_db(  # type: ignore[misc]
                changes.read_since, after_id=self._after, seen=frozenset(self._applied)
            )
            if len(rows) >= 1000:  # further behind than one read: forget everything instead
                forget_everything()
            else:
                for row in rows:
                    if row.id not in self._applied:
                        changes.deliver(row.kind, row.key)
            if rows:
                self._after = max(self._after, rows[-1].id)
                floor = self._after - changes.LOOKBACK_IDS
                self._applied = {i for i in self._applied | {r.id for r in rows} if i > floor}
        # Trust dates from when the read began: a change committed after that is not in it.
        _last_read = started


_followers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def ensure_following(run_db: Callable[..., object], flush: Callable[[], object]) -> None:
    """Start this event loop's follower unless it runs (called on every gateway request)."""
    loop = asyncio.get_running_loop()
    task = _followers.get(loop)
    if task is not None and not task.done():
        return
    for stale in [lp for lp in _followers if lp.is_closed()]:
        del _followers[stale]
    _followers[loop] = loop.create_task(Follower(run_db, flush).run(), name="gateway-change-follower")


def mode() -> str:
    """For ``/ready``: ``cached`` while the caches answer, else why the database answers."""
    if live():
        return "cached"
    if not _followers:
        return "database (no request yet)"
    return "database (change feed not read)"

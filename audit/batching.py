"""A background writer that turns many small enqueues into few batched database writes.

The caller side (``submit``) never waits on the database: it appends to an in-memory deque under
a lock held for microseconds. One daemon thread per process drains the deque every ``interval``
seconds (or sooner when ``max_batch`` items are waiting) and hands each batch to ``write``.

Crash policy, which ``audit.services`` documents for the gateway:
- A clean shutdown (SIGTERM/SIGINT under daphne or Celery, normal interpreter exit) flushes the
  queue from an ``atexit`` hook, bounded by ``shutdown_timeout``.
- SIGKILL, OOM or power loss lose what is still queued: at most ``interval`` seconds of events
  in normal operation (more if the database was already unreachable).
- A database outage is retried with backoff; meanwhile at most ``max_queue`` events are held,
  and events beyond that are counted and dropped. The count is passed to the next successful
  ``write`` so the log itself records the loss.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("gatehouse.audit")

WriteBatch = Callable[[list[dict[str, Any]], int], None]


class BatchWriter:
    def __init__(
        self,
        *,
        write: WriteBatch,
        interval: Callable[[], float],
        max_batch: int = 500,
        max_queue: int = 100_000,
        retry_on: tuple[type[BaseException], ...] = (),
        on_retry: Callable[[], None] = lambda: None,
        on_idle: Callable[[], None] = lambda: None,
        shutdown_timeout: float = 10.0,
        name: str = "audit-writer",
    ) -> None:
        self._write = write
        self._interval = interval
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._retry_on = retry_on
        self._on_retry = on_retry
        self._on_idle = on_idle
        self._shutdown_timeout = shutdown_timeout
        self._name = name
        self._atexit_registered = False
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """Fresh state (also in a forked child, where the parent's thread does not exist)."""
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._dropped = 0
        self._flush_requested = False

    def submit(self, item: dict[str, Any]) -> bool:
        """Queue one item; False if it was dropped because the queue is full."""
        with self._cond:
            if len(self._queue) >= self._max_queue:
                self._dropped += 1
                return False
            self._queue.append(item)
            if self._thread is None or not self._thread.is_alive():
                self._start()
            # The first item wakes a writer idling on an empty queue; a full batch wakes it early.
            if len(self._queue) == 1 or len(self._queue) >= self._max_batch:
                self._cond.notify_all()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def flush(self, timeout: float) -> bool:
        """Write everything queued now; True when nothing is left within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._queue and (self._thread is None or not self._thread.is_alive()):
                self._start()
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._atexit_registered:
            atexit.register(self._flush_at_exit)
            self._atexit_registered = True

    def _flush_at_exit(self) -> None:
        if not self.flush(self._shutdown_timeout):
            logger.error("audit events lost at shutdown", extra={"audit_lost": self.pending()})

    def _next_batch(self) -> tuple[list[dict[str, Any]], int]:
        with self._cond:
            while not self._queue:
                self._flush_requested = False
                self._cond.notify_all()
                self._cond.wait()
            deadline = time.monotonic() + self._interval()
            while len(self._queue) < self._max_batch and not self._flush_requested:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            self._in_flight = len(batch)
            dropped, self._dropped = self._dropped, 0
            return batch, dropped

    def _run(self) -> None:
        while True:
            batch, dropped = self._next_batch()
            try:
                self._write_with_retry(batch, dropped)
            finally:
                with self._cond:
                    idle = not self._queue
                if idle:
                    # Release the database connection between bursts (PostgreSQL counts
                    # connections; a test run drops its database at the end).
                    self._on_idle()
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _write_with_retry(self, batch: list[dict[str, Any]], dropped: int) -> None:
        delay = 0.2
        while True:
            try:
                self._write(batch, dropped)
                return
            except self._retry_on as exc:
                logger.warning("audit batch write failed; retrying",
                               extra={"error": type(exc).__name__, "events": len(batch)})
                self._on_retry()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                logger.exception("audit batch write failed; events dropped", extra={"events": len(batch)})
                with self._cond:
                    self._dropped += len(batch) + dropped
                return

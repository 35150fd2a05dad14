"""The gateway's database threads: ``run_db`` runs a sync ORM function off the event loop.

Admission, session lifecycle, the stream watch and tool pinning all cross to the database
through this one small pool, whose threads keep their connections open (``gateway.admission.rules``
says why that matters for speed).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.db import InterfaceError, OperationalError, connection

T = TypeVar("T")

# Threads of this pool keep their database connection between calls.
DB_THREADS = 8
_db_pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="gateway-db")


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

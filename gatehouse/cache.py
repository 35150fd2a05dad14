"""The Django cache over Redis: one connection pool per process.

``caches`` is context-local (one cache instance per request under ASGI, and per
``sync_to_async`` hop), and each stock ``RedisCache`` instance built its own connection pool, so
every gateway or API request opened a new Redis connection. ``SharedConnectionPool`` is the
``pool_class`` that hands every instance in a process the same pool for a URL and options.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_RECONNECT_ON = (redis.exceptions.ConnectionError,)


class SharedConnectionPool(redis.ConnectionPool):
    """``pool_class`` whose ``from_url`` returns this process's one pool per URL and options.

    redis-py pools are thread-safe and reset themselves in a forked child (Celery's prefork), so
    one per process is all a process needs; it grows only with concurrent use.
    """

    _pools: dict[tuple[str, tuple[tuple[str, str], ...]], redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.ConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                # A pooled connection Redis dropped (a restart) is reconnected once, not failed.
                kwargs.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=_RECONNECT_ON))
                pool = cls._pools[key] = super().from_url(url, **kwargs)
        return pool

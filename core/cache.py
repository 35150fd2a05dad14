"""The Django cache over Redis: one connection pool per process, and a stand-in while Redis is down.

Two faults of Django's stock ``RedisCache`` in this deployment:

- **A connection per request.** ``caches`` is context-local (one cache instance per request under
  ASGI, and per ``sync_to_async`` hop), and each instance built its own connection pool, so every
  gateway or API request opened a new Redis connection. ``SharedConnectionPool`` is the
  ``pool_class`` that hands every instance in a process the same pool for a URL and options.
- **A Redis outage fails every request.** The gateway's rate limiter and the API's throttling
  keep their counters in the cache, so an unreachable Redis turned every request into a 500.
  ``ResilientRedisCache`` serves an operation Redis cannot answer from a per-process
  ``LocMemCache`` instead (same keys, same timeouts, so the fixed-window limits keep their
  semantics, counted per process), logs the outage once, goes straight to the stand-in for
  ``RETRY_SECONDS``, then lets one operation try Redis again, and logs the recovery once.

The gateway counts its rate limits through ``acount_hits``: every hit of a request in one
pipelined round trip on an asyncio client of the process's event loop, so a slow Redis delays
the requests that wait for it, not every stream of the process; the same stand-in answers while
Redis is down.

Nothing that decides whether a token is valid lives in the cache: tokens are checked against the
database (``gateway.admission``; a process reuses a success only in its own memory, and forgets it
through the change feed in the database, ``gateway.admission.caches``), so an outage cannot let a revoked
token in.
Keep it that way: the cache may only hold what is safe to lose or to count per process for a
while (rate-limit counters, throttle history, upstream tool listings).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.outage import Outage

# How long a process serves the cache from memory after Redis failed, before trying it again.
RETRY_SECONDS = 2.0
# Redis answers cache operations in well under a millisecond; anything near these is an outage.
SOCKET_TIMEOUT_SECONDS = 1.0
# Entries the stand-in keeps (rate-limit windows of every active token and client IP).
FALLBACK_MAX_ENTRIES = 100_000

# What "Redis is unavailable" looks like; any other error (a bad key, a bug) is raised as usual.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, DNS, auth, still loading
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,  # a replica after a failover
    OSError,
)


_RECONNECT_ON = (redis.exceptions.ConnectionError,)


class SharedConnectionPool(redis.ConnectionPool):
    """``pool_class`` whose ``from_url`` returns this process's one pool per URL and options.

    redis-py pools are thread-safe and reset themselves in a forked child (Celery's prefork), so
    one per process is all a process needs; it grows only with concurrent use.
    """

    _pools: dict[tuple[str, tuple[tuple[str, str], ...]], SharedConnectionPool] = {}
    _pools_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SharedConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._pools_lock:
            pool = cls._pools.get(key)
            if pool is None:
                # A pooled connection Redis dropped (a restart) is reconnected once, not failed.
                kwargs.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=_RECONNECT_ON))
                pool = cls._pools[key] = super().from_url(url, **kwargs)
        return pool


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def _outage_for(servers: list[str]) -> Outage:
    """Every cache instance of a process on the same Redis shares one view of its health."""
    key = ",".join(servers)
    with _outages_lock:
        if key not in _outages:
            _outages[key] = Outage(
                what="Redis cache", target=key, retry_seconds=RETRY_SECONDS,
                meanwhile="rate limits, API throttling and cached data are kept per process until it answers",
            )
        return _outages[key]


def _degrades(name: str) -> Callable[..., Any]:
    """``RedisCache.<name>``, answered by the stand-in when Redis cannot answer."""
    on_redis = getattr(RedisCache, name)

    @functools.wraps(on_redis)
    def method(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        outage = self._outage
        if outage.should_try():
            try:
                result = on_redis(self, *args, **kwargs)
            except UNAVAILABLE as exc:
                outage.failed(exc)
            else:
                if outage.answered():
                    self._fallback.clear()  # the next outage starts from nothing stale
                return result
        return getattr(self._fallback, name)(*args, **kwargs)

    return method


class ResilientRedisCache(RedisCache):
    """``RedisCache`` on a per-process pool that degrades to a per-process cache during an outage.

    ``OPTIONS`` default to ``pool_class=SharedConnectionPool`` and 1 s socket timeouts.
    """

    # Set by RedisCache.__init__ (untyped in django-stubs) and here.
    _servers: list[str]
    _options: dict[str, Any]
    _cache: Any
    _outage: Outage
    _fallback: LocMemCache

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._options = {
            "pool_class": SharedConnectionPool,
            "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
            **self._options,
        }
        self._outage = _outage_for(self._servers)
        name = hashlib.sha256(",".join(self._servers).encode()).hexdigest()[:16]
        fallback_params = {k: v for k, v in params.items() if k != "OPTIONS"}
        fallback_params["OPTIONS"] = {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}
        # LocMemCache keeps its data per LOCATION and process, so every instance shares it.
        self._fallback = LocMemCache(f"gatehouse-redis-fallback-{name}", fallback_params)

    @property
    def degraded(self) -> bool:
        """True while this process serves the cache from memory."""
        return self._outage.down

    def count_hit(self, key: str, timeout: int) -> int:
        """``count_hit`` on Redis in one round trip (SET NX EX, then INCR, pipelined)."""
        if self._outage.should_try():
            try:
                made = self.make_and_validate_key(key)
                pipe = self._cache.get_client(key, write=True).pipeline(transaction=False)
                pipe.set(made, 0, ex=timeout, nx=True)
                pipe.incr(made)
                _, count = pipe.execute()
            except UNAVAILABLE as exc:
                self._outage.failed(exc)
            else:
                if self._outage.answered():
                    self._fallback.clear()
                return int(count)
        return _count_in(self._fallback, key, timeout)

    async def acount_hits(self, hits: Sequence[tuple[str, int]]) -> list[int]:
        """``count_hit`` for several keys in one round trip of the event loop's own client, which
        waits for Redis without blocking the loop (``gateway.admission``); the same stand-in and
        outage handling as every other operation."""
        if self._outage.should_try():
            try:
                pipe = _async_client(self._servers[0]).pipeline(transaction=False)
                for key, timeout in hits:
                    made = self.make_and_validate_key(key)
                    pipe.set(made, 0, ex=timeout, nx=True)
                    pipe.incr(made)
                answers = await pipe.execute()
            except UNAVAILABLE as exc:
                self._outage.failed(exc)
            else:
                if self._outage.answered():
                    self._fallback.clear()
                return [int(count) for count in answers[1::2]]
        return [_count_in(self._fallback, key, timeout) for key, timeout in hits]

    def ping(self) -> None:
        """Ask Redis itself (never the stand-in); raises what Redis raised. For ``/ready``."""
        self._cache.get_client(write=True).ping()

    add = _degrades("add")
    get = _degrades("get")
    set = _degrades("set")
    touch = _degrades("touch")
    delete = _degrades("delete")
    get_many = _degrades("get_many")
    has_key = _degrades("has_key")
    incr = _degrades("incr")
    set_many = _degrades("set_many")
    delete_many = _degrades("delete_many")
    clear = _degrades("clear")


def count_hit(backend: Any, key: str, timeout: int) -> int:
    """Add one to the counter ``key`` of ``backend`` (a cache, or Django's ``cache`` proxy), made
    with ``timeout`` seconds to live if new; returns its new value.

    The rate limiter's one cache operation: on Redis a single round trip (Django's ``add`` then
    ``incr`` took three), in memory ``add``/``incr`` as before.
    """
    counter = getattr(backend, "count_hit", None)
    if counter is not None:
        return int(counter(key, timeout))
    return _count_in(backend, key, timeout)


async def acount_hits(backend: Any, hits: Sequence[tuple[str, int]]) -> list[int]:
    """``count_hit`` for each ``(key, timeout)`` of ``hits``, awaited: on Redis one round trip
    that does not block the event loop; in memory, at once."""
    counter = getattr(backend, "acount_hits", None)
    if counter is not None:
        return list(await counter(hits))
    return [_count_in(backend, key, timeout) for key, timeout in hits]


# One asyncio client per event loop and Redis URL: an asyncio connection belongs to the loop that
# opened it. The gateway has one loop per process; a loop that is gone takes its clients with it.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)
_async_clients_lock = threading.Lock()


def _async_client(url: str) -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    with _async_clients_lock:
        clients = _async_clients.setdefault(loop, {})
        client = clients.get(url)
        if client is None:
            client = clients[url] = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                retry=AsyncRetry(NoBackoff(), 1, supported_errors=_RECONNECT_ON),
            )
        return client


def _count_in(backend: Any, key: str, timeout: int) -> int:
    if backend.add(key, 1, timeout=timeout):
        return 1
    try:
        return int(backend.incr(key))
    except ValueError:  # the window expired between add and incr
        backend.set(key, 1, timeout=timeout)
        return 1

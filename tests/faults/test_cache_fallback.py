"""Promises of the cache while Redis is unreachable (unit level: runs in every pass, no Redis needed
except to come back).

Fault: the Redis behind Django's cache is down (refused, timed out, out of memory, read-only).
What the client sees: the gateway's per-IP and per-token limits and the API's per-key throttle
keep their rate and fixed windows, counted by each process on its own; no 500.
How fast it recovers: a process tries Redis again ``RETRY_SECONDS`` (2 s) after a failure (one
operation, not every request), and uses it again as soon as it answers.
No revoked token accepted: the cache never judges a token; tokens are checked against the
database, outage or not.
The outage is logged once when it starts and once when it ends, without the Redis password.
"""

from __future__ import annotations

import logging
import time

import pytest
from asgiref.sync import async_to_sync

from core.cache import ResilientRedisCache, SharedConnectionPool
from gateway.admission import ratelimit
from gateway.request.refusals import RateLimited
from tests.support.processes import free_port
from tests.support.redis_server import OwnRedis

PASSWORD = "pw-secret-never-logged"


def dead_redis_url() -> str:
    """Nothing listens there (a fresh port per test, so each test has its own outage state)."""
    return f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"


def resilient(url: str, *, retry_seconds: float = 60.0) -> ResilientRedisCache:
    backend = ResilientRedisCache(url, {"KEY_PREFIX": "faults"})
    backend._outage.retry_seconds = retry_seconds
    return backend


@pytest.fixture
def outage_log(caplog):
    with caplog.at_level(logging.INFO, logger="gatehouse.outage"):
        yield lambda: [r for r in caplog.records if r.name == "gatehouse.outage"]



def test_the_rate_limit_keeps_its_rate_per_process_while_redis_is_down(monkeypatch, rate_clock):
    monkeypatch.setattr(ratelimit, "cache", resilient(dead_redis_url()))

    for _ in range(3):
        ratelimit.hit(bucket="token", key="jti-1", rate="3/m")
    with pytest.raises(RateLimited) as refused:
        ratelimit.hit(bucket="token", key="jti-1", rate="3/m")

    assert refused.value.retry_after == 40  # the same fixed window: 20 s into its minute, 40 s to go
    assert refused.value.first_in_window
    ratelimit.hit(bucket="token", key="jti-2", rate="3/m")  # other keys keep their own count


def test_every_cache_instance_of_a_process_shares_the_stand_in(monkeypatch, rate_clock):
    """``caches`` hands each request its own instance: the count must not restart per request."""
    url = dead_redis_url()
    for _ in range(3):
        monkeypatch.setattr(ratelimit, "cache", resilient(url))
        ratelimit.hit(bucket="ip", key="10.0.0.1", rate="3/m")
    monkeypatch.setattr(ratelimit, "cache", resilient(url))
    with pytest.raises(RateLimited):
        ratelimit.hit(bucket="ip", key="10.0.0.1", rate="3/m")


def test_the_outage_is_logged_once_masked_and_redis_is_not_retried_per_request(outage_log):
    backend = resilient(dead_redis_url())
    tries = []
    real_get_client = backend._cache.get_client
    backend._cache.get_client = lambda *a, **kw: tries.append(1) or real_get_client(*a, **kw)

    for n in range(50):
        backend.set(f"k{n}", n, 60)
        assert backend.get(f"k{n}") == n

    assert len(tries) == 1, "Redis was tried again before the retry interval"
    assert backend.degraded
    [line] = outage_log()
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("Redis cache unreachable")
    assert line.error == "ConnectionError"
    assert PASSWORD not in str(vars(line))
    assert "***@127.0.0.1" in line.target


def test_errors_that_are_not_an_outage_are_raised_as_before():
    backend = resilient(dead_redis_url())
    with pytest.raises(ValueError, match="not found"):
        backend.incr("missing")  # the stand-in behaves like Redis: incr needs an existing key


@pytest.mark.integration
def test_the_cache_uses_redis_again_by_itself_when_it_returns(tmp_path, outage_log):
    port = free_port()
    redis = OwnRedis(port=port, log_path=tmp_path / "redis.log")
    # An interval that outlasts starting redis-server on a loaded machine, so "still" falls in it.
    backend = resilient(redis.url, retry_seconds=3.0)
    backend.set("during", "outage", 60)
    failed_at = time.monotonic()
    assert backend.degraded

    redis.start()
    try:
        backend.set("still", "memory", 60)  # within the retry interval: not tried yet
        with redis.client() as client:
            assert client.dbsize() == 0
        time.sleep(max(0.0, failed_at + 3.05 - time.monotonic()))
        backend.set("after", "recovery", 60)
        assert not backend.degraded
        with redis.client() as client:
            assert client.exists(backend.make_key("after")) == 1
        assert backend.get("during") is None  # the stand-in's values do not outlive the outage
    finally:
        redis.kill()

    messages = [r.getMessage() for r in outage_log()]
    assert messages == ["Redis cache unreachable: rate limits, API throttling and cached data are kept "
                        "per process until it answers", "Redis cache reachable again"]


def test_one_connection_pool_per_process_and_url():
    url = dead_redis_url()
    pools = {id(resilient(url)._cache._get_connection_pool(write=True)) for _ in range(5)}
    assert len(pools) == 1
    other = resilient(dead_redis_url())._cache._get_connection_pool(write=True)
    assert id(other) not in pools
    assert isinstance(other, SharedConnectionPool)


def test_ready_asks_redis_itself_not_the_stand_in(settings, client, db):
    settings.CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache",
                                   "LOCATION": dead_redis_url(), "KEY_PREFIX": "faults"}}
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "error: ConnectionError (redis)"
    assert PASSWORD not in response.content.decode()


@pytest.mark.integration
def test_limits_counted_on_the_event_loop_keep_their_rate_in_redis_and_without_it(tmp_path, rate_clock,
                                                                                 monkeypatch):
    """The gateway's path (``hit_all``: one awaited round trip for both buckets) counts in Redis
    while it answers, and in the process's stand-in while it does not, with the same limits."""
    redis = OwnRedis(port=free_port(), log_path=tmp_path / "redis.log")
    redis.start()
    try:
        backend = resilient(redis.url, retry_seconds=60)
        monkeypatch.setattr(ratelimit, "cache", backend)
        both = [("ip", "10.0.0.9", "5/m"), ("token", "jti-9", "3/m")]
        for _ in range(3):
            async_to_sync(ratelimit.hit_all)(both)
        with pytest.raises(RateLimited) as refused:
            async_to_sync(ratelimit.hit_all)(both)
        assert (refused.value.bucket, refused.value.retry_after) == ("token", 40)
        with redis.client() as client:
            assert len(client.keys("faults:*gw:rl:*")) == 2  # both counters live in Redis
        assert not backend.degraded
    finally:
        redis.kill()

    # Redis gone: the next count is the stand-in's, from zero, and keeps the same limit.
    for _ in range(3):
        async_to_sync(ratelimit.hit_all)([("token", "jti-10", "3/m")])
    assert backend.degraded
    with pytest.raises(RateLimited):
        async_to_sync(ratelimit.hit_all)([("token", "jti-10", "3/m")])

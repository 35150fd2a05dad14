"""Promise: a gateway process keeps a handful of Redis connections, however many requests it serves.

Fault: a new Redis connection per gateway or API request (each request's cache instance made its
own connection pool), so a busy instance churned through thousands of connections and two
processes held hundreds of clients at once.
What the client sees: nothing; Redis sees one pool per process and cache URL, reused by every
request and thread (``core.cache.SharedConnectionPool``).
Measured against a Redis of the test's own (``INFO``: ``total_connections_received``, the
connections opened meanwhile; ``connected_clients``, those open at the end).
"""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.drivers import call, initialize

pytestmark = pytest.mark.integration

REQUESTS = 100
GATEWAY_ENV = {"GATEHOUSE_TOKEN_RATE": "1000/m"}
# The cache pool grows only with concurrency (sequential requests share one connection); the
# channel layer and a readiness probe may add a few. Before the fix: one per request.
MAX_NEW_CONNECTIONS = 10


def _opened(own_redis, run) -> tuple[int, int]:
    before = own_redis.info()
    run()
    after = own_redis.info()
    # Our own INFO connection counts once in each figure.
    return (after["total_connections_received"] - before["total_connections_received"] - 1,
            after["connected_clients"] - 1)


def test_100_gateway_requests_open_a_handful_of_redis_connections(redis_gateway, own_redis, api, make_token):
    token = make_token({"demo": None}, name="connections").secret
    url = f"{redis_gateway.url}/mcp/demo/"
    session_id = initialize(url, token)
    assert call(url, token, session_id, "echo", {"text": "warm"}).status_code == 200

    def run() -> None:
        for n in range(REQUESTS):
            answer = call(url, token, session_id, "echo", {"text": str(n)})
            assert answer.status_code == 200, answer.text

    opened, connected = _opened(own_redis, run)

    print(f"\n{REQUESTS} gateway requests: {opened} Redis connections opened, {connected} open at the end")
    assert opened <= MAX_NEW_CONNECTIONS, f"{opened} connections for {REQUESTS} gateway requests"


def test_100_api_calls_open_a_handful_of_redis_connections(redis_gateway, own_redis, api):
    assert api.get("servers/").status_code == 200

    def run() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {api.key}"}, timeout=15) as client:
            for _ in range(REQUESTS):
                assert client.get(f"{api.url}/api/v1/servers/").status_code == 200

    opened, connected = _opened(own_redis, run)

    print(f"\n{REQUESTS} API calls: {opened} Redis connections opened, {connected} open at the end")
    assert opened <= MAX_NEW_CONNECTIONS, f"{opened} connections for {REQUESTS} API calls"

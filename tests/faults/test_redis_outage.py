"""Promises of a live gateway whose Redis (cache, channel layer, broker) dies and comes back.

Fault: Redis is killed (SIGKILL, as a crash or an OOM kill) under a running daphne.
What the client sees: gateway requests with a valid token still get 200 (tokens are checked
against the database; rate limits keep their rate, counted per process); legacy SSE sessions
still work; the REST API and the console are fully usable; ``/ready`` is 503 and names Redis in
each check that depends on it; ``/health`` stays 200.
How fast it recovers: ``/ready`` is 200 as soon as Redis answers again; the shared rate-limit
counters are used again within ``core.cache.RETRY_SECONDS`` (2 s) of the next request; no
restart needed.
No revoked token accepted: a token revoked through the REST API during the outage is refused
by the very next request, though that instance had just admitted it from its cache (the change
feed that empties the caches lives in the database, not in Redis: ``core.changes``).
The outage is logged once per process when it starts and once when it ends, without the Redis
password.

Each test kills the module's own Redis (``own_redis``), never the machine's shared one, and
starts it again afterwards.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from core.cache import RETRY_SECONDS
from tests.factories import DEFAULT_PASSWORD, StaffUserFactory
from tests.faults.conftest import REDIS_PASSWORD, TOKEN_RATE
from tests.gateway.drivers import INIT, MCP_HEADERS, call, initialize, sdk_sse_client, text_of
from tests.gateway.test_scale_out import LegacyStream
from tests.support.clock import at_the_start_of_a_live_window, live_window

pytestmark = pytest.mark.integration

RATE_LIMIT = int(TOKEN_RATE.split("/")[0])


class Log:
    """What the gateway logged since a point in time."""

    def __init__(self, server) -> None:
        self.server = server
        self.start = server.log_path.stat().st_size

    def text(self) -> str:
        with open(self.server.log_path, "rb") as log:
            log.seek(self.start)
            return log.read().decode(errors="replace")

    def count(self, message: str) -> int:
        return len(re.findall(rf'"message": "{re.escape(message)}', self.text()))


def wait_ready(url: str, *, timeout: float) -> float:
    """Seconds until ``/ready`` says 200; fails after ``timeout``."""
    started = time.monotonic()
    while (response := httpx.get(f"{url}/ready", timeout=15)).status_code != 200:
        assert time.monotonic() - started < timeout, f"/ready still {response.status_code}: {response.text}"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def outage(transactional_db, redis_gateway, own_redis) -> Iterator[Log]:
    """Redis killed for the test's body; started again (and the gateway ready) afterwards.

    Yields the gateway's log from just before the kill. The test's rows must be committed for
    daphne to see them, hence ``transactional_db``. The next test starts on a gateway that uses
    Redis again, so each test sees its own outage begin.
    """
    assert httpx.get(f"{redis_gateway.url}/ready", timeout=15).status_code == 200
    log = Log(redis_gateway)
    own_redis.kill()
    try:
        yield log
    finally:
        if own_redis.process is None:
            own_redis.start()
        wait_ready(redis_gateway.url, timeout=30)
        if log.count("Redis cache unreachable") > log.count("Redis cache reachable again"):
            time.sleep(RETRY_SECONDS + 0.1)
            # Any gateway request counts against the per-IP limit: the cache's next try of Redis.
            assert httpx.post(mcp_url(redis_gateway), json=INIT, timeout=15).status_code == 401
            assert log.count("Redis cache reachable again") == 1


def mcp_url(server, name: str = "demo") -> str:
    return f"{server.url}/mcp/{name}/"


def test_gateway_requests_with_a_valid_token_still_get_200(redis_gateway, demo, make_token, outage):
    token = make_token({"demo": None}, name="during-outage").secret

    session_id = initialize(mcp_url(redis_gateway), token)
    answers = [call(mcp_url(redis_gateway), token, session_id, "echo", {"text": str(n)}) for n in range(10)]

    assert [a.status_code for a in answers] == [200] * 10
    assert outage.count("Redis cache unreachable") == 1


def test_rate_limits_keep_their_rate_per_process_during_the_outage(redis_gateway, demo, make_token, outage):
    token = make_token({"demo": None}, name="limited").secret
    window = at_the_start_of_a_live_window()  # a fixed window: start at the beginning of one

    statuses = [initialize_status(redis_gateway, token) for _ in range(RATE_LIMIT + 1)]

    assert live_window() == window, "the test crossed a rate window; rerun"
    assert statuses == [200] * RATE_LIMIT + [429]


def initialize_status(server, token: str) -> int:
    response = httpx.post(mcp_url(server), json=INIT, headers={**MCP_HEADERS, "X-API-Key": token}, timeout=15)
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
    return response.status_code


def test_a_token_revoked_through_the_api_during_the_outage_is_refused_at_once(redis_gateway, api, outage):
    minted = api.post("tokens/", json={"name": "ci-outage", "servers": ["demo"], "ttl": "1h"})
    assert minted.status_code == 201, minted.text
    token, token_id = minted.json()["token"], minted.json()["id"]
    session_id = initialize(mcp_url(redis_gateway), token)
    assert call(mcp_url(redis_gateway), token, session_id, "echo").status_code == 200

    revoked = api.post(f"tokens/{token_id}/revoke/", json={"reason": "outage drill"})
    after = [call(mcp_url(redis_gateway), token, session_id, "echo") for _ in range(5)]

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert [a.status_code for a in after] == [401] * 5
    assert 'error="invalid_token"' in after[0].headers["www-authenticate"]
    assert initialize_status(redis_gateway, token) == 401  # nor a new session
    listed = api.get(f"tokens/{token_id}/")
    assert listed.status_code == 200
    assert listed.json()["status"] == "revoked"


def test_the_console_stays_usable_during_the_outage(redis_gateway, demo, outage):
    staff = StaffUserFactory(username="ops-during-outage")
    with httpx.Client(base_url=redis_gateway.url, timeout=15) as browser:
        login_page = browser.get("/accounts/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        logged_in = browser.post(
            "/accounts/login/",
            data={"username": staff.username, "password": DEFAULT_PASSWORD, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{redis_gateway.url}/accounts/login/"},
        )
        assert logged_in.status_code == 302, logged_in.text
        pages = {path: browser.get(path).status_code for path in ("/console/", "/console/tokens/",
                                                                  "/console/servers/", "/console/audit/")}
    assert pages == dict.fromkeys(pages, 200)


def test_legacy_sse_sessions_still_work_during_the_outage(
    redis_gateway, make_token, upstream_mcp_sse, register_upstream, outage
):
    register_upstream(name="demo-sse", url=upstream_mcp_sse, transport="sse")
    token = make_token({"demo-sse": ["echo"]}, name="legacy").secret

    async def echo() -> str:
        async with sdk_sse_client(f"{redis_gateway.url}/sse/demo-sse/", token=token) as client:
            return text_of(await client.call_tool("echo", {"text": "no redis"}))

    assert "no redis" in anyio.run(echo)

    # A refused call is still refused and accepted (202, not 500); only its answer, which travels
    # over the channel layer to the stream, is lost while Redis is down.
    stream = LegacyStream(f"{redis_gateway.url}/sse/demo-sse/", token)
    try:
        messages_url = redis_gateway.url + stream.endpoint.get(timeout=10)
        denied = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "secret_tool"}}
        refused = httpx.post(messages_url, json=denied, headers={"X-API-Key": token}, timeout=15)
    finally:
        stream.close()
    assert refused.status_code == 202
    assert outage.count("Channel layer unreachable") == 1


def test_ready_is_503_naming_redis_while_health_stays_200(redis_gateway, outage):
    response = httpx.get(f"{redis_gateway.url}/ready", timeout=30)

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["cache", "channel_layer", "broker"]
    assert body["checks"]["database"] == "ok"
    assert all(body["checks"][name].endswith("(redis)") for name in body["failed"]), body
    assert REDIS_PASSWORD not in response.text
    assert httpx.get(f"{redis_gateway.url}/health", timeout=5).status_code == 200


def test_everything_comes_back_by_itself_when_redis_returns(
    redis_gateway, own_redis, demo, make_token, outage
):
    token = make_token({"demo": None}, name="recovery").secret
    for _ in range(3):  # several requests, one outage: one log line
        assert initialize_status(redis_gateway, token) == 200

    own_redis.start()
    seconds_to_ready = wait_ready(redis_gateway.url, timeout=10)

    deadline = time.monotonic() + RETRY_SECONDS + 3
    with own_redis.client() as redis:
        while not redis.keys("*gw:rl:*"):  # the rate-limit counters are in Redis again
            assert time.monotonic() < deadline, "the gateway did not go back to the Redis cache"
            assert initialize_status(redis_gateway, token) == 200
            time.sleep(0.2)
    assert seconds_to_ready < 10
    assert outage.count("Redis cache unreachable") == 1
    assert outage.count("Redis cache reachable again") == 1
    assert REDIS_PASSWORD not in outage.text()

"""An upstream that opens an event stream and then stalls: silent, or a trickle of bytes.

- The fault: the upstream sends event-stream headers and then nothing, or one byte at a time
  without ever completing an event, or one event and then nothing.
- What the client sees: the response headers at once (not with the first event), a
  ``: keepalive`` comment every ``GATEHOUSE_STREAM_KEEPALIVE_SECONDS`` while it waits, and, when
  the bound passes (``GATEHOUSE_STREAM_FIRST_EVENT_SECONDS`` before the first event of a POST's
  answer, ``GATEHOUSE_STREAM_IDLE_SECONDS`` of silence after it or on a GET stream), one
  JSON-RPC error per pending request (code -32001, ``data.reason`` naming the bound), then the
  end of the stream. Loose bytes do not count as life: only complete events do.
- The audit row says what happened: outcome ``error``, status 504, the bound as its reason.
- Recovery: nothing to recover; the next request is judged on its own.
- No token involved is ever accepted beyond its validity (the stream re-checks still run).

These run on a dedicated gateway with bounds of a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.faults.clients import Watched
from tests.faults.hostile import StallingUpstream, sse_data, stalling_upstream
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import MCP_HEADERS
from tests.support.fixtures import LiveServer
from tests.support.processes import daphne_args, free_port, running, subprocess_env

pytestmark = pytest.mark.integration

FIRST_EVENT_SECONDS = 2.0
IDLE_SECONDS = 2.5
KEEPALIVE_SECONDS = 0.5
BOUNDS_ENV = {
    "GATEHOUSE_STREAM_FIRST_EVENT_SECONDS": str(FIRST_EVENT_SECONDS),
    "GATEHOUSE_STREAM_IDLE_SECONDS": str(IDLE_SECONDS),
    "GATEHOUSE_STREAM_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
}
SLACK = 1.5  # scheduling and the loopback hops


@pytest.fixture(scope="module")
def bounded_gateway(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne-bounded") / "daphne.log"
    with django_db_blocker.unblock():
        env = subprocess_env(BOUNDS_ENV)
    with running(daphne_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path)


@pytest.fixture
def stalling(transactional_db) -> Iterator[StallingUpstream]:
    with stalling_upstream() as upstream:
        yield upstream


def _tools_call(request_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "think", "arguments": {}}}


def _post(gateway: LiveServer, server: str, token: str, body: dict) -> Watched:
    return Watched("POST", f"{gateway.url}/mcp/{server}/", {**MCP_HEADERS, "X-API-Key": token}, body)


def _assert_headers_at_once(watched: Watched) -> None:
    deadline = time.monotonic() + 5
    while watched.headers_at is None and watched.ended_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watched.status == 200
    assert watched.headers_at is not None and watched.headers_at < 1.0, "headers waited for the first event"


@pytest.mark.parametrize("path", ["silent", "trickle"])
def test_a_stalled_answer_gets_headers_at_once_keepalives_then_a_jsonrpc_error(
    bounded_gateway, stalling, register_upstream, make_token, path
):
    register_upstream(name=f"stall-{path}", url=stalling.url(path))
    token = make_token({f"stall-{path}": None}, name=f"stall-{path}")

    watched = _post(bounded_gateway, f"stall-{path}", token.secret, _tools_call(7))
    _assert_headers_at_once(watched)
    watched.wait(timeout=FIRST_EVENT_SECONDS + SLACK + 5)

    assert watched.ended_at is not None and watched.ended_at < FIRST_EVENT_SECONDS + SLACK
    assert watched.keepalives() >= 2
    (error,) = sse_data(watched.text)
    assert error["id"] == 7
    assert error["error"]["code"] == -32001
    assert error["error"]["data"]["reason"] == "upstream_first_event_timeout"
    row = wait_for_event(server=f"stall-{path}", status=504)
    assert row.outcome == "error"
    assert row.detail["reason"] == "upstream_first_event_timeout"


def test_silence_after_the_first_event_is_bounded_by_the_idle_time(
    bounded_gateway, stalling, register_upstream, make_token
):
    register_upstream(name="stall-idle", url=stalling.url("one-then-silent"))
    token = make_token({"stall-idle": None}, name="stall-idle")

    watched = _post(bounded_gateway, "stall-idle", token.secret, _tools_call(8))
    _assert_headers_at_once(watched)
    watched.wait(timeout=IDLE_SECONDS + SLACK + 5)

    progress, error = sse_data(watched.text)
    assert progress["method"] == "notifications/progress"
    assert error["id"] == 8 and error["error"]["data"]["reason"] == "upstream_stream_idle"
    assert IDLE_SECONDS - 0.2 < watched.ended_at < IDLE_SECONDS + SLACK
    row = wait_for_event(server="stall-idle", status=504)
    assert row.outcome == "error" and row.detail["reason"] == "upstream_stream_idle"


def test_a_silent_get_stream_gets_keepalives_and_ends_after_the_idle_time(
    bounded_gateway, stalling, register_upstream, make_token
):
    register_upstream(name="stall-get", url=stalling.url("silent"))
    token = make_token({"stall-get": None}, name="stall-get")

    headers = {"Accept": "text/event-stream", "X-API-Key": token.secret}
    watched = Watched("GET", f"{bounded_gateway.url}/mcp/stall-get/", headers, None)
    _assert_headers_at_once(watched)
    watched.wait(timeout=IDLE_SECONDS + SLACK + 5)

    assert sse_data(watched.text) == []  # no request of the client's is pending on a GET stream
    assert watched.keepalives() >= 2
    assert watched.ended_at < IDLE_SECONDS + SLACK
    row = wait_for_event(server="stall-get", status=504)
    assert row.detail["reason"] == "upstream_stream_idle"

"""End to end: a real worker with beat expires a gateway session nobody touches; the gateway then
answers 404 for it, the upstream got a DELETE for its own session id, and open streams close."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding, SessionEndOutbox
from tests.celery.conftest import wait_until
from tests.gateway.drivers import eventually

pytestmark = pytest.mark.integration

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "expiry-test", "version": "1"}},
}


def _result(response: httpx.Response) -> dict:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    lines = response.text.splitlines()
    data = [line.removeprefix("data:").strip() for line in lines if line.startswith("data:")]
    return json.loads(data[-1])


def _initialize(url: str, headers: dict[str, str]) -> str:
    response = httpx.post(url, json=INITIALIZE, headers={**HEADERS, **headers}, timeout=15)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    ack = httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                     headers={**HEADERS, **headers, "Mcp-Session-Id": session_id}, timeout=15)
    assert ack.status_code == 202, ack.text
    return session_id


def _call(url: str, headers: dict[str, str], session_id: str, tool: str, arguments: dict) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}
    return httpx.post(url, json=body, headers={**HEADERS, **headers, "Mcp-Session-Id": session_id},
                      timeout=15)


def _upstream_deletes(upstream_url: str) -> list[str]:
    """Mcp-Session-Id of every DELETE the upstream received, from its own request log."""
    session_id = _initialize(upstream_url, {})
    answer = _result(_call(upstream_url, {}, session_id, "request_log", {}))
    log = answer["result"]["structuredContent"]["result"]
    deletes = []
    for request in log:
        if request["method"] == "DELETE":
            deletes.extend(v for k, v in request["headers"] if k.lower() == "mcp-session-id")
    return deletes


class GetStream:
    """A GET event stream of a session, read in a thread until the gateway ends it."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.closed = threading.Event()
        self.closed_at: float | None = None
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, headers={**headers, "Accept": "text/event-stream"},
                              timeout=httpx.Timeout(15, read=60)) as response:
                for _ in response.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        finally:
            self.closed_at = time.time()
            self.closed.set()


@pytest.fixture
def demo(live_gateway, transactional_db, upstream_mcp, register_upstream) -> str:
    register_upstream(name="demo", url=upstream_mcp)
    return f"{live_gateway.url}/mcp/demo/"


def test_idle_gateway_session_is_expired_by_beat_then_refused_and_deleted_upstream(
    start_worker, demo, make_token, upstream_mcp
):
    issued = make_token({"demo": None}, name="expiry-e2e")
    auth = {"Authorization": f"Bearer {issued.secret}"}
    session_id = _initialize(demo, auth)
    assert _call(demo, auth, session_id, "echo", {"text": "hi"}).status_code == 200
    upstream_session_id = SessionBinding.objects.get(pk=session_id).upstream_session_id

    start_worker(env={"GATEHOUSE_SESSION_IDLE_SECONDS": "2"})
    wait_until(
        lambda: SessionBinding.objects.filter(pk=session_id, status=SessionBinding.Status.EXPIRED).exists(),
        what="the worker to expire the idle session",
    )
    wait_until(
        lambda: AuditEvent.objects.filter(event=events.SESSION_EXPIRED, session_id=session_id).exists(),
        what="the session.expired event",
    )

    # The worker is another process: the gateway learns of the expiry from its change feed
    # (a 50 ms poll), so a call made the instant the row changed may still be admitted.
    again = {"text": "again"}
    refused = eventually(
        lambda: (answer := _call(demo, auth, session_id, "echo", again)).status_code != 200 and answer
    )
    assert refused.status_code == 404
    assert refused.json()["error"] == "session_not_found"
    event = AuditEvent.objects.get(event=events.SESSION_EXPIRED, session_id=session_id)
    assert event.detail["upstream_delete"] == "queued"
    # The worker commits the expiry first and DELETEs upstream after, outside that transaction.
    wait_until(lambda: upstream_session_id in _upstream_deletes(upstream_mcp), what="the upstream DELETE")
    wait_until(
        lambda: SessionEndOutbox.objects.filter(session_id=session_id, upstream_status=200).exists(),
        what="the outbox to record the upstream's 200",
    )


def test_open_stream_closes_when_beat_expires_its_session(start_worker, demo, make_token):
    issued = make_token({"demo": None}, name="stream-e2e")
    auth = {"Authorization": f"Bearer {issued.secret}"}
    session_id = _initialize(demo, auth)
    stream = GetStream(demo, {**HEADERS, **auth, "Mcp-Session-Id": session_id})
    assert not stream.closed.wait(1.0), "the GET stream ended before any expiry"

    # Too old rather than idle: an open stream is not a request, so this cannot depend on
    # whether the gateway counts it as activity.
    start_worker(env={"GATEHOUSE_SESSION_MAX_SECONDS": "3"})

    assert stream.closed.wait(60), "the GET stream stayed open after its session expired"
    binding = SessionBinding.objects.get(pk=session_id)
    assert binding.status == SessionBinding.Status.EXPIRED
    print(f"stream closed {stream.closed_at - binding.ended_at.timestamp():.2f}s after the session ended")

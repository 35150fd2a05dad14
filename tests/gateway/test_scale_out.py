"""Two gateway instances behind a load balancer without sticky sessions: any instance serves any request.

The contract (docs/architecture.md): several daphne instances share the database (session mapping,
revocations) and Redis (channel layer); a session started on one instance is served, ended and
watched on every other.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from tests.gateway.drivers import INIT, MCP_HEADERS, OpenStream, call, initialize, sse_result
from tests.support.processes import free_port, running, serve_args, subprocess_env
from tests.support.redis_server import require_redis

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Instances:
    a: str
    b: str


@pytest.fixture(scope="module")
def instances(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Instances]:
    """Two daphnes on the test database and one Redis channel layer, as in production."""
    redis = require_redis("gateways scaled out over Redis")
    with django_db_blocker.unblock():
        env = subprocess_env({"REDIS_URL": redis})
    logs = tmp_path_factory.mktemp("scale-out")
    urls = []
    with ExitStack() as stack:
        for name in ("a", "b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(
                running(serve_args(port), env=env, ready_url=f"{url}/health", log_path=logs / f"{name}.log")
            )
            urls.append(url)
        yield Instances(a=urls[0], b=urls[1])


def test_a_session_started_on_one_instance_is_served_and_ended_by_the_other(gw, instances):
    token = gw.token({"demo": None})
    on_a, on_b = f"{instances.a}/mcp/demo/", f"{instances.b}/mcp/demo/"
    session_id = initialize(on_a, token.secret)

    answer = call(on_b, token.secret, session_id, "echo", {"text": "via b"})
    assert answer.status_code == 200
    assert sse_result(answer)["result"]["structuredContent"] == {"result": "via b"}

    headers = {**MCP_HEADERS, "X-API-Key": token.secret, "Mcp-Session-Id": session_id}
    assert httpx.delete(on_b, headers=headers, timeout=15).status_code == 200
    after = call(on_a, token.secret, session_id, "echo", {"text": "via a"})
    assert after.status_code == 404
    assert after.json()["error"] == "session_not_found"


def test_a_stream_held_by_one_instance_closes_when_the_other_ends_its_session(gw, instances):
    token = gw.token({"demo": None})
    on_a, on_b = f"{instances.a}/mcp/demo/", f"{instances.b}/mcp/demo/"
    session_id = initialize(on_a, token.secret)
    headers = {**MCP_HEADERS, "X-API-Key": token.secret, "Mcp-Session-Id": session_id}
    stream = OpenStream(on_a, {**headers, "Accept": "text/event-stream"})

    assert httpx.delete(on_b, headers=headers, timeout=15).status_code == 200

    assert stream.wait_closed(timeout=5) is not None, "instance a kept the ended session's stream open"


class LegacyStream:
    """A legacy SSE stream read in a thread: its endpoint, then each JSON-RPC message by id."""

    def __init__(self, url: str, token: str) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        self.endpoint: queue.Queue[str] = queue.Queue()
        self._response: httpx.Response | None = None
        args = (url, {"Authorization": f"Bearer {token}"})
        threading.Thread(target=self._read, args=args, daemon=True).start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with contextlib.suppress(httpx.HTTPError), httpx.stream(  # close() ends the read with an error
            "GET", url, headers=headers, timeout=httpx.Timeout(15, read=30)
        ) as response:
            self._response = response
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = line.removeprefix("data:").strip()
                    if event == "endpoint":
                        self.endpoint.put(data)
                    else:
                        self.messages.put(json.loads(data))

    def next_with_id(self, request_id: int) -> dict:
        while True:
            message = self.messages.get(timeout=10)
            if message.get("id") == request_id:
                return message

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


def test_legacy_sse_messages_posted_to_one_instance_answer_on_the_stream_held_by_the_other(gw, instances):
    token = gw.token({"demo-sse": ["echo"]})
    stream = LegacyStream(f"{instances.a}/sse/demo-sse/", token.secret)
    try:
        messages_url = instances.b + stream.endpoint.get(timeout=10)
        headers = {"X-API-Key": token.secret}

        def post(body: dict) -> int:
            return httpx.post(messages_url, json=body, headers=headers, timeout=15).status_code

        assert post(INIT) == 202
        assert stream.next_with_id(1)["result"]["serverInfo"]
        assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}) == 202
        allowed = {"name": "echo", "arguments": {"text": "across"}}
        assert post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": allowed}) == 202
        assert stream.next_with_id(2)["result"]["structuredContent"] == {"result": "across"}
        # Refused by instance b before the upstream; the error reaches a's stream over Redis.
        denied = {"name": "secret_tool", "arguments": {}}
        assert post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": denied}) == 202
        assert "not allowed" in stream.next_with_id(3)["error"]["message"]
    finally:
        stream.close()

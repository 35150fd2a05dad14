"""Legacy HTTP+SSE: the SDK's SSE client works through /sse/<server>/ and /messages/<server>/."""

from __future__ import annotations

import json
import time
import uuid

import anyio
import httpx
import pytest

from tests.gateway.drivers import (
    INIT,
    active_slow_calls,
    sdk_sse_client,
    slow_call,
    text_of,
    wait_until_no_slow_calls,
)

pytestmark = pytest.mark.integration


async def _answers(url: str, token: str | None) -> dict:
    async with sdk_sse_client(url, token=token) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "sse ✓"})
        add = await client.call_tool("add", {"a": 1, "b": 2})
        return {
            "tools": sorted(t.name for t in tools.tools),
            "echo": (text_of(echo), echo.structured_content),
            "add": (text_of(add), add.structured_content),
        }


def test_sse_answers_through_gateway_match_direct_answers(gw):
    token = gw.token({"demo-sse": None})
    assert anyio.run(_answers, gw.sse(), token.secret) == anyio.run(_answers, gw.upstream_sse, None)


def test_endpoint_event_points_at_the_gateway_and_leaks_nothing(gw):
    token = gw.token({"demo-sse": None})
    upstream_port = gw.upstream_sse.rsplit(":", 1)[1].split("/")[0]
    with httpx.stream(
        "GET", gw.sse(), headers={"Authorization": f"Bearer {token.secret}"}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    assert lines[0] == "event: endpoint"
    endpoint = lines[-1].removeprefix("data:").strip()
    assert endpoint.startswith("/messages/demo-sse/?session_id=")
    assert upstream_port not in endpoint
    assert "key=" not in endpoint and "gth_" not in endpoint


def test_sse_progress_arrives_as_it_happens(gw):
    token = gw.token({"demo-sse": None})

    async def run() -> tuple[list[float], float]:
        arrivals: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            arrivals.append(time.monotonic())

        async with sdk_sse_client(gw.sse(), token=token.secret) as client:
            await client.call_tool("slow_progress", {"steps": 3, "delay": 0.4}, progress_callback=on_progress)
            return arrivals, time.monotonic()

    arrivals, finished = anyio.run(run)
    assert len(arrivals) == 3
    # Sent 0.4 s apart, the last 0.4 s before the answer: buffered, they would land together at its end.
    assert arrivals[-1] - arrivals[0] > 0.4 and finished - arrivals[0] > 0.9


def test_sse_scoped_tools_are_hidden_and_refused_on_the_stream(gw):
    token = gw.token({"demo-sse": ["echo"]})

    async def run() -> tuple[list[str], str]:
        async with sdk_sse_client(gw.sse(), token=token.secret) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            try:
                await client.call_tool("secret_tool", {})
            except Exception as exc:
                return names, str(exc)
            return names, "not refused"

    names, refusal = anyio.run(run)
    assert names == ["echo"]
    assert "not allowed" in refusal


def _endpoint(lines) -> str:
    for line in lines:
        if line.startswith("data:"):
            return line.removeprefix("data:").strip()
    raise AssertionError("no endpoint event")


def test_sse_messages_need_a_credential_and_the_right_token(gw):
    owner = gw.token({"demo-sse": None}, name="owner")
    other = gw.token({"demo-sse": None}, name="other")
    with httpx.stream(
        "GET", gw.sse(), headers={"Authorization": f"Bearer {owner.secret}"}, timeout=10
    ) as stream:
        lines = stream.iter_lines()  # kept referenced: an abandoned iterator closes the connection
        endpoint = _endpoint(lines)
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        anonymous = httpx.post(gw.url + endpoint, json=body, timeout=10)
        foreign = httpx.post(gw.url + endpoint, json=body, headers={"X-API-Key": other.secret}, timeout=10)
        own = httpx.post(gw.url + endpoint, json=body, headers={"X-API-Key": owner.secret}, timeout=10)
    assert anonymous.status_code == 401
    assert foreign.status_code == 404
    assert foreign.json()["error"] == "session_not_found"
    assert own.status_code == 202


def test_a_refused_notification_on_legacy_sse_fails_its_post_and_stays_off_the_stream(gw):
    token = gw.token({"demo-sse": ["echo"]})
    auth = {"Authorization": f"Bearer {token.secret}"}
    with httpx.stream("GET", gw.sse(), headers=auth, timeout=10) as stream:
        lines = stream.iter_lines()
        messages = gw.url + _endpoint(lines)
        refused = httpx.post(messages, json={"jsonrpc": "2.0", "method": "tools/call", "params": {
            "name": "secret_tool", "arguments": {}}}, headers=auth, timeout=10)
        assert httpx.post(messages, json={"jsonrpc": "2.0", "id": 5, "method": "ping"},
                          headers=auth, timeout=10).status_code == 202
        # The next message on the stream answers the ping: no error was injected for the notification.
        first = next(line for line in lines if line.startswith("data:"))
    assert refused.status_code == 400
    assert refused.json()["error"]["data"]["tool"] == "secret_tool"
    assert json.loads(first.removeprefix("data:"))["id"] == 5


def test_closing_the_legacy_stream_cancels_the_upstream_call(gw):
    """A client disconnect cancels the upstream request; on legacy SSE the stream is the session."""
    token = gw.token({"demo-sse": None})
    tag = uuid.uuid4().hex
    auth = {"Authorization": f"Bearer {token.secret}"}
    with httpx.stream("GET", gw.sse(), headers=auth, timeout=15) as stream:
        lines = stream.iter_lines()

        def next_data() -> str:
            return next(line for line in lines if line.startswith("data:")).removeprefix("data:").strip()

        messages = gw.url + next_data()

        def post(message: dict) -> None:
            assert httpx.post(messages, json=message, headers=auth, timeout=10).status_code == 202

        post(INIT)
        assert '"id":1' in next_data().replace(" ", "")
        post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        post(slow_call(2, tag=tag))
        assert "notifications/progress" in next_data()
        assert active_slow_calls(gw.upstream_sse, tag, sse=True) == 1
    wait_until_no_slow_calls(gw.upstream_sse, tag, sse=True)


def test_messages_check_the_credential_before_the_session_id(gw):
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    url = f"{gw.url}/messages/demo-sse/"
    forged = httpx.post(url, json=body, headers={"Authorization": "Bearer gth_forged.token.here"}, timeout=10)
    valid = gw.token({"demo-sse": None})
    no_session = httpx.post(url, json=body, headers={"X-API-Key": valid.secret}, timeout=10)

    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer resource_metadata=")
    assert no_session.status_code == 400
    assert no_session.json()["error"] == "session_required"

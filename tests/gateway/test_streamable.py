"""SDK clients reach the upstream through the gateway exactly as they would directly.

Both protocol generations: the SDK's default negotiation (stateless 2026-07-28, server/discover)
and the stateful handshake revisions (``mode="legacy"``: initialize + Mcp-Session-Id).
"""

from __future__ import annotations

import time
import uuid

import anyio
import httpx
import pytest

from gateway.models import SessionBinding
from tests.gateway.drivers import active_slow_calls, sdk_client, slow_call, text_of, wait_until_no_slow_calls

pytestmark = pytest.mark.integration

MODES = ["auto", "legacy"]


async def _answers(url: str, token: str | None, mode: str) -> dict:
    async with sdk_client(url, token=token, mode=mode) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "héllo ✓"})
        add = await client.call_tool("add", {"a": 40, "b": 2})
        return {
            "tools": sorted((t.name, t.description) for t in tools.tools),
            "schemas": {t.name: t.input_schema for t in tools.tools},
            "echo": (text_of(echo), echo.structured_content, echo.is_error),
            "add": (text_of(add), add.structured_content, add.is_error),
        }


@pytest.mark.parametrize("mode", MODES)
def test_answers_through_gateway_match_direct_answers(gw, mode):
    token = gw.token({"demo": None})
    direct = anyio.run(_answers, gw.upstream, None, mode)
    proxied = anyio.run(_answers, gw.mcp("demo"), token.secret, mode)
    assert proxied == direct
    assert proxied["add"][1] == {"result": 42}


@pytest.mark.parametrize("mode", MODES)
def test_bare_mcp_path_serves_a_single_server_token(gw, mode):
    token = gw.token({"demo": None})

    async def call() -> str:
        async with sdk_client(f"{gw.url}/mcp/", token=token.secret, mode=mode) as client:
            return text_of(await client.call_tool("echo", {"text": "bare"}))

    assert anyio.run(call) == "bare"


@pytest.mark.parametrize("mode", MODES)
def test_progress_notifications_arrive_as_they_happen(gw, mode):
    """Unbuffered: each progress event arrives about one step apart, before the final result."""
    token = gw.token({"demo": None})
    steps, delay = 4, 0.4

    async def run() -> tuple[list[float], float, str]:
        arrivals: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            arrivals.append(time.monotonic())

        async with sdk_client(gw.mcp("demo"), token=token.secret, mode=mode) as client:
            result = await client.call_tool(
                "slow_progress", {"steps": steps, "delay": delay}, progress_callback=on_progress
            )
            return arrivals, time.monotonic(), text_of(result)

    arrivals, finished, text = anyio.run(run)
    assert text == f"done {steps}"
    assert len(arrivals) == steps
    # Relative, not a speed check: with buffering all events would land together at the end. The
    # spread, not each gap: one event relayed late on a loaded machine shortens the gap after it.
    assert arrivals[-1] - arrivals[0] > (steps - 1) * delay * 0.5
    assert finished - arrivals[0] > (steps - 1) * delay * 0.75


@pytest.mark.parametrize("mode", MODES)
def test_scoped_token_sees_only_allowed_tools_and_cannot_call_others(gw, mode):
    token = gw.token({"demo": ["echo", "add"]})

    async def run() -> tuple[list[str], str, str]:
        async with sdk_client(gw.mcp("demo"), token=token.secret, mode=mode) as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            allowed = text_of(await client.call_tool("echo", {"text": "ok"}))
            try:
                await client.call_tool("secret_tool", {})
            except Exception as exc:  # the SDK raises MCPError for a JSON-RPC error
                return names, allowed, str(exc)
            return names, allowed, "not refused"

    names, allowed, refusal = anyio.run(run)
    assert names == ["add", "echo"]
    assert allowed == "ok"
    assert "secret_tool" in refusal and "not allowed" in refusal


def test_filtered_tool_list_is_never_marked_shareable(gw):
    """The upstream hints cacheScope=public; a per-token list must come out private."""
    token = gw.token({"demo": ["echo"]})

    async def run():
        async with sdk_client(gw.mcp("demo"), token=token.secret) as client:
            return (await client.list_tools()).cache_scope

    async def direct():
        async with sdk_client(gw.upstream) as client:
            return (await client.list_tools()).cache_scope

    assert anyio.run(direct) == "public"
    assert anyio.run(run) == "private"


@pytest.mark.parametrize("mode", MODES)
def test_no_credential_reaches_the_upstream(gw, mode):
    token = gw.token({"demo": None})

    async def run() -> list[dict]:
        # The upstream logs every request of the run; earlier tests on this worker may have sent
        # credentials to it on purpose (static headers). Only what this test's client sent counts.
        async with sdk_client(gw.mcp("demo"), token=token.secret, mode=mode) as client:
            earlier = len((await client.call_tool("request_log", {})).structured_content["result"])
        async with sdk_client(gw.mcp("demo"), token=token.secret, mode=mode) as client:
            await client.call_tool("echo", {"text": "x"})
            result = await client.call_tool("request_log", {})
            return result.structured_content["result"][earlier:]

    log = anyio.run(run)
    assert log, "the upstream saw requests"
    raw = repr(log)
    assert token.secret not in raw
    assert token.secret.split(".")[-1] not in raw  # not even the signature part
    for request in log:
        names = {name for name, _ in request["headers"]}
        assert "authorization" not in names and "x-api-key" not in names
        assert "key=" not in request["query_string"]


def test_client_disconnect_cancels_the_upstream_call(gw):
    """2026-07-28: closing the response stream is the cancellation; it must reach the upstream."""
    token = gw.token({"demo": None})
    tag = uuid.uuid4().hex
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = slow_call(1, tag=tag, meta=meta)
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "slow_progress",
        "Authorization": f"Bearer {token.secret}",
    }
    with httpx.stream("POST", gw.mcp("demo"), json=body, headers=headers, timeout=15) as response:
        lines = response.iter_lines()  # kept referenced until the block closes the connection
        seen = 0
        for line in lines:
            seen += "notifications/progress" in line
            if seen == 3:
                break
        assert seen == 3, "progress was streaming"
        assert active_slow_calls(gw.upstream, tag) == 1
    wait_until_no_slow_calls(gw.upstream, tag)


def test_a_token_the_client_echoes_elsewhere_is_masked_before_the_upstream(gw):
    """No token reaches an upstream, not even one a client put in its User-Agent or a query parameter."""
    token = gw.token({"demo": None})
    bare_jwt = token.secret.removeprefix("gth_")  # re-adding the prefix would make it valid again
    url = f"{gw.mcp('demo')}?trace=1&token={token.secret}&jwt={bare_jwt}"
    headers = {"User-Agent": f"agent {token.secret}", "X-Debug": token.secret, "X-Raw": bare_jwt}

    async def run() -> dict:
        async with sdk_client(url, token=token.secret, headers=headers, mode="legacy") as client:
            return (await client.call_tool("request_info", {})).structured_content

    seen = anyio.run(run)
    assert bare_jwt not in repr(seen)
    # The console and the API show each session's user agent.
    (stored_agent,) = SessionBinding.objects.filter(token=token.token).values_list("user_agent", flat=True)
    assert stored_agent.startswith("agent gth_") and token.secret[:40] not in stored_agent
    received = dict(seen["headers"])
    assert received["user-agent"] == f"agent {token.token.display_prefix}"
    assert received["x-debug"] == received["x-raw"] == token.token.display_prefix
    assert seen["query_string"] == "trace=1"

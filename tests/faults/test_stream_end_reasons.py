"""Streams the gateway ends on purpose say why, to each request still waiting on them.

- The fault: while a long tool call streams its progress, the token is revoked, or the upstream
  process dies (its connection breaks off mid-stream).
- What the client sees: before the stream ends, one SSE ``message`` event per request of its
  POST still unanswered, carrying a JSON-RPC error (code -32000, ``data.reason``:
  ``token_invalid``, ``upstream_unavailable``…), so an MCP client fails that call with a reason
  instead of waiting or guessing. A GET stream (no request of the client's) just ends.
- How fast: a revocation ends the stream within 1 s (the open-stream re-check); a dead upstream
  at once.
- No revoked token is accepted: the revoked token's next request is a 401.
"""

from __future__ import annotations

import os
import sys
import time

import httpx
import pytest

from tests.faults.clients import Watched
from tests.faults.hostile import sse_data
from tests.gateway.drivers import MCP_HEADERS, initialize, slow_call
from tests.support.processes import free_port, running
from tokens.services import revoke_token

pytestmark = pytest.mark.integration


def _progress_seen(text: str) -> bool:
    return "notifications/progress" in text


def _slow_call_stream(url: str, token: str, session_id: str, *, request_id: int, tag: str) -> Watched:
    headers = {**MCP_HEADERS, "X-API-Key": token, "Mcp-Session-Id": session_id}
    return Watched("POST", url, headers, slow_call(request_id, tag=tag, steps=300))


def test_a_revoked_token_ends_a_tool_call_stream_with_a_jsonrpc_error_for_its_request(
    live_gateway, transactional_db, upstream_mcp, register_upstream, make_token
):
    register_upstream(name="demo", url=upstream_mcp)
    issued = make_token({"demo": None}, name="revoked-mid-call")
    url = f"{live_gateway.url}/mcp/demo/"
    session_id = initialize(url, issued.secret)

    watched = _slow_call_stream(url, issued.secret, session_id, request_id=41, tag="revoke-mid-call")
    watched.wait_for(_progress_seen, timeout=10)
    revoked_at = time.monotonic() - watched.started
    revoke_token(token=issued.token, actor="tests")
    watched.wait(timeout=10)

    assert watched.ended_at - revoked_at < 1.5
    error = sse_data(watched.text)[-1]
    assert error["id"] == 41
    assert error["error"]["code"] == -32000
    assert error["error"]["data"]["reason"] == "token_invalid"
    assert "no longer valid" in error["error"]["message"]
    # …and, a revocation taking effect within 1 s, the revoked token gets nothing more.
    time.sleep(max(0.0, 1.0 - (time.monotonic() - watched.started - revoked_at)))
    again = httpx.post(url, json=slow_call(42, tag="x", steps=1),
                       headers={**MCP_HEADERS, "X-API-Key": issued.secret, "Mcp-Session-Id": session_id})
    assert again.status_code == 401


@pytest.fixture
def mortal_upstream(tmp_path):
    """A real SDK upstream the test may kill: yields (its URL, its process)."""
    port = free_port()
    args = [sys.executable, "-m", "tests.support.upstream", "--port", str(port), "--transport", "streamable"]
    with running(args, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                 ready_url=f"http://127.0.0.1:{port}/health", log_path=tmp_path / "upstream.log") as process:
        yield f"http://127.0.0.1:{port}/mcp", process


def test_an_upstream_dying_mid_stream_ends_it_with_a_jsonrpc_error_for_the_request(
    live_gateway, transactional_db, mortal_upstream, register_upstream, make_token
):
    upstream_url, process = mortal_upstream
    register_upstream(name="mortal", url=upstream_url)
    issued = make_token({"mortal": None}, name="mortal")
    url = f"{live_gateway.url}/mcp/mortal/"
    session_id = initialize(url, issued.secret)

    watched = _slow_call_stream(url, issued.secret, session_id, request_id=51, tag="dies-mid-call")
    watched.wait_for(_progress_seen, timeout=10)
    process.kill()
    watched.wait(timeout=10)

    error = sse_data(watched.text)[-1]
    assert error["id"] == 51
    assert error["error"]["code"] == -32000
    assert error["error"]["data"]["reason"] == "upstream_unavailable"
    assert "broke off" in error["error"]["message"]

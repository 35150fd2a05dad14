"""PostgreSQL goes away while a revoked token's stream is open.

The fault: a client streams a long tool call (progress events every 0.1 s) through a gateway
instance; the database becomes unreachable for that instance, and meanwhile the token is revoked.

What the client sees: the stream ends within about a second of the last re-check the gateway
could make (``recheck_failed``: the gateway fails closed rather than stream on unchecked), and no
event arrives after that. A new request during the outage is refused, never forwarded. After the
outage the revoked token gets 401.

Recovery: as soon as the database answers again, requests are judged normally; no revoked token
is accepted at any point. The outage is private to the test (a cut proxy in front of PostgreSQL).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.faults.conftest import POSTGRES_ONLY, wait_until
from tests.gateway.drivers import MCP_HEADERS, initialize, slow_call
from tokens.services import revoke_token

pytestmark = [pytest.mark.integration, POSTGRES_ONLY]

# The revocation promise (1 s) plus a little for the client to see the stream end.
PROMISE = 1.5


class ProgressStream:
    """A slow tool call read in a thread, with the time each event arrived."""

    def __init__(self, url: str, headers: dict[str, str], body: dict) -> None:
        self.events: list[float] = []
        self.closed_at: float | None = None
        self._thread = threading.Thread(target=self._run, args=(url, headers, body), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str], body: dict) -> None:
        try:
            with httpx.stream("POST", url, headers=headers, json=body,
                              timeout=httpx.Timeout(15, read=60)) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        self.events.append(time.monotonic())
        except httpx.HTTPError:
            pass
        finally:
            self.closed_at = time.monotonic()


def test_a_revoked_tokens_stream_ends_within_the_promise_while_the_database_is_down(
    database_outage, upstream_mcp, register_upstream, make_token
):
    register_upstream(name="demo", url=upstream_mcp)
    issued = make_token({"demo": None}, name="outage-stream")
    url = f"{database_outage.url}/mcp/demo/"
    session_id = initialize(url, issued.secret)
    headers = {**MCP_HEADERS, "X-API-Key": issued.secret, "Mcp-Session-Id": session_id}
    stream = ProgressStream(url, headers, slow_call(7, tag="outage", steps=300))
    wait_until(lambda: len(stream.events) >= 3, what="the stream's first progress events")

    database_outage.proxy.cut()
    cut_at = time.monotonic()
    revoke_token(token=issued.token, actor="tests")  # the test's own connection, not the proxy

    wait_until(lambda: stream.closed_at is not None, timeout=10, what="the stream to end")
    assert stream.closed_at - cut_at <= PROMISE, f"streamed {stream.closed_at - cut_at:.2f}s into the outage"
    time.sleep(1)
    assert all(at <= cut_at + PROMISE for at in stream.events)

    refused = httpx.post(url, headers=headers, timeout=15,
                         json={"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                               "params": {"name": "echo", "arguments": {"text": "during"}}})
    print(f"new request during the outage: {refused.status_code} {refused.text[:120]}")
    print(f"stream ended {stream.closed_at - cut_at:.2f}s after the cut")
    assert refused.status_code >= 400, refused.text  # 503 database_unavailable once mapped
    assert "during" not in refused.text

    database_outage.proxy.restore()
    after = wait_until(
        lambda: (r := httpx.post(url, headers=headers, timeout=15, json={
            "jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "after"}}})).status_code < 500 and r,
        timeout=15, what="the gateway to answer again",
    )
    assert after.status_code == 401, after.text

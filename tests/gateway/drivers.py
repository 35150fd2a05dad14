"""MCP clients the gateway tests drive: the official SDK (both transports) and supergateway over stdio."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.support.polling import eventually

T = TypeVar("T")


@asynccontextmanager
async def sdk_client(
    url: str, *, token: str | None = None, mode: str = "auto", headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    """The SDK's Streamable HTTP client; ``mode="legacy"`` forces the stateful (initialize) revisions."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    http = httpx2.AsyncClient(headers=all_headers, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


def active_slow_calls(url: str, tag: str, *, token: str | None = None, sse: bool = False) -> int:
    """How many ``slow_progress`` calls tagged ``tag`` the upstream is running right now."""

    async def run() -> int:
        connect = sdk_sse_client if sse else sdk_client
        async with connect(url, token=token) as client:
            return (await client.call_tool("active_calls", {"tag": tag})).structured_content["tagged"]

    return anyio.run(run)


def slow_call(request_id: int, *, tag: str, steps: int = 200, meta: dict[str, Any] | None = None) -> dict:
    """A ``tools/call`` of ``slow_progress`` (0.1 s a step) that reports progress and carries ``tag``."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": "slow_progress",
            "arguments": {"steps": steps, "delay": 0.1, "tag": tag},
            "_meta": {"progressToken": "p", **(meta or {})},
        },
    }


def wait_until_no_slow_calls(url: str, tag: str, *, sse: bool = False, timeout: float = 5.0) -> None:
    """Fail unless the upstream stops running the calls tagged ``tag`` within ``timeout``."""
    eventually(lambda: active_slow_calls(url, tag, sse=sse) == 0, timeout=timeout, every=0.1,
               what="the tool call upstream to end")


@asynccontextmanager
async def sdk_sse_client(url: str, *, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with Client(sse_client(url, headers=headers), mode="legacy") as client:
        yield client


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


class StdioClient:
    """Drives an MCP stdio process (supergateway) with JSON-RPC lines, one request at a time."""

    def __init__(self, args: Sequence[str | Path], *, stderr_path: Path) -> None:
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30
    ) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self._write(message)
        while True:
            line = self._lines.get(timeout=timeout)
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            if isinstance(reply, dict) and reply.get("id") == request_id:
                return reply

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._write(message)

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "claude-desktop-stand-in", "version": "1.0"},
            },
        )
        self.notify("notifications/initialized")
        return reply

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


# A stateful-revision initialize request, for tests that speak raw HTTP.
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


# --- raw HTTP, for what the SDK hides (session ids, when a stream ends) -------------------------

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def initialize(url: str, token: str) -> str:
    response = httpx.post(url, json=INIT, headers={**MCP_HEADERS, "X-API-Key": token}, timeout=15)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    ack = httpx.post(
        url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={**MCP_HEADERS, "X-API-Key": token, "Mcp-Session-Id": session_id},
        timeout=15,
    )
    assert ack.status_code == 202
    return session_id


def call(url: str, token: str, session_id: str, name: str, arguments: dict | None = None) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}},
    }
    return httpx.post(
        url, json=body, headers={**MCP_HEADERS, "X-API-Key": token, "Mcp-Session-Id": session_id}, timeout=15
    )


def sse_result(response: httpx.Response) -> dict:
    data = [
        line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")
    ]
    return json.loads(data[-1])


class OpenStream:
    """An event stream read in a thread; records when the gateway ended it.

    SDK servers send a GET stream's headers only with its first event, so "open" here means the
    request has been waiting at the gateway for a moment, headers or not.
    """

    def __init__(
        self, url: str, headers: dict[str, str], *, method: str = "GET", body: dict | None = None
    ) -> None:
        self.status: int | None = None
        self.events = 0
        self.closed_at: float | None = None
        self._thread = threading.Thread(target=self._run, args=(method, url, headers, body), daemon=True)
        self._thread.start()
        time.sleep(0.5)
        assert self.closed_at is None, f"stream ended early with {self.status}"

    def _run(self, method: str, url: str, headers: dict[str, str], body: dict | None) -> None:
        try:
            with httpx.stream(
                method, url, headers=headers, json=body, timeout=httpx.Timeout(15, read=30)
            ) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    self.events += line.startswith("data:")
        except httpx.HTTPError:
            pass
        finally:
            self.closed_at = time.monotonic()

    def wait_for(self, condition: Callable[[OpenStream], bool], *, timeout: float = 10.0) -> None:
        """Until ``condition(self)`` holds (headers or a first event through a loaded machine)."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            assert self.closed_at is None, f"stream ended early with {self.status}"
            assert time.monotonic() < deadline, f"stream: status {self.status}, {self.events} events"
            time.sleep(0.02)

    def wait_closed(self, timeout: float) -> float | None:
        self._thread.join(timeout)
        return self.closed_at


# Only what every POST needs: tests add the credential, the version and the session themselves.
POST_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def post(url: str, body: object = INIT, *, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={**POST_HEADERS, **(headers or {})}, timeout=15, **kwargs)


def assert_json_error(response: httpx.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert body["detail"]
    return body


# ``eventually`` (re-exported from tests.support.polling): a change this test process made (as a
# CLI, a Celery sweep or another instance would) reaches the live gateway within its change feed's
# 50 ms poll, not at once; 5 s is the patience of a slow CI box.
__all__ = ["eventually"]

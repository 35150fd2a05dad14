"""A minimal, fast upstream MCP endpoint for the benchmark (so the gateway's cost dominates).

- ``POST`` answers every JSON-RPC request at once: as JSON, or as a one-event SSE stream when the
  path ends in ``/sse``; an ``initialize`` gets an ``Mcp-Session-Id``.
- ``GET`` opens an event stream: one event at once, then ``?events=N`` events ``?every=MS`` apart,
  each carrying its send time (``time.time()``, same machine as the client), then stays open idle
  until the client leaves.

Not a real MCP server: only what ``bench.gateway`` sends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn

_sessions = itertools.count(1)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] != "/health":
        await _stream(scope, receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/health":
        await _send(send, 200, b"application/json", b'{"status":"ok"}')
        return
    request = json.loads(body or b"{}")
    extra: list[tuple[bytes, bytes]] = []
    if request.get("method") == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": request.get("params", {}).get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench", "version": "1"},
        }
        extra.append((b"mcp-session-id", f"bench-{next(_sessions)}".encode()))
    else:
        result = {"content": [{"type": "text", "text": "pong"}], "isError": False}
    if "id" not in request:  # a notification
        await _send(send, 202, b"application/json", b"")
        return
    reply = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()
    if scope["path"].endswith("/sse"):
        await _send(send, 200, b"text/event-stream", b"event: message\ndata: " + reply + b"\n\n", extra)
    else:
        await _send(send, 200, b"application/json", reply, extra)


def _event(n: int) -> bytes:
    note = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": {"n": n, "sent": time.time()}},
    }
    return b"event: message\ndata: " + json.dumps(note).encode() + b"\n\n"


async def _stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    query = parse_qs(scope.get("query_string", b"").decode())
    events = int(query.get("events", ["0"])[0])
    every = float(query.get("every", ["10"])[0]) / 1000
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": _event(0), "more_body": True})
    while (await receive())["type"] != "http.request":  # the (empty) request body comes first
        pass

    async def disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnect())
    try:
        for n in range(1, events + 1):
            await asyncio.sleep(every)
            if gone.done():
                return
            await send({"type": "http.response.body", "body": _event(n), "more_body": True})
        await gone
    finally:
        gone.cancel()


async def _send(
    send: Any, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, backlog=8192
    )

"""A minimal, fast upstream MCP endpoint for the proxy benchmark (so the gateway's cost dominates).

POST answers every JSON-RPC request at once: as JSON, or as a one-event SSE stream when the
request path ends in ``/sse``. Not a real MCP server: only what ``bench.gateway.run`` sends.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
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
    reply = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request.get("id"),
            "result": {"content": [{"type": "text", "text": "pong"}], "isError": False},
        }
    ).encode()
    if scope["path"].endswith("/sse"):
        await _send(send, 200, b"text/event-stream", b"event: message\ndata: " + reply + b"\n\n")
    else:
        await _send(send, 200, b"application/json", reply)


async def _send(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

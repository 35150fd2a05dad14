"""A real upstream MCP server (official ``mcp`` SDK) guarded by an OAuth provider, for the connected
accounts tests: every request must carry ``Authorization: Bearer <token>`` that the provider says
is active (RFC 7662 introspection, authenticated as a resource server client); anything else gets
401 and never reaches the MCP app. Its tool ``whoami`` answers with the person the token belongs to.

Run it as ``python -m tests.support.introspecting_upstream --port N --introspect-url U
--client-id ID --client-secret S``; ``GET /health`` answers without a token. Each token it saw is
counted by its last 6 characters only (``/seen``), so a test can tell a refreshed token was used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

_SEEN: Counter[str] = Counter()


class Introspector:
    def __init__(self, *, url: str, client_id: str, client_secret: str) -> None:
        self.url, self.auth = url, httpx.BasicAuth(client_id, client_secret)

    async def username(self, authorization: str) -> str | None:
        """The owner of an active bearer token, or None."""
        if not authorization.startswith("Bearer "):
            return None
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(self.url, data={"token": authorization[7:]}, auth=self.auth)
        body = answer.json() if answer.status_code == 200 else {}
        return body.get("username") if body.get("active") else None


def build_app(introspector: Introspector) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    mcp = MCPServer("introspecting-upstream", version="1.0.0")

    @mcp.tool()
    async def whoami(ctx: Context) -> dict[str, Any]:
        """The person whose provider token carried this call."""
        request = ctx.request_context.request
        authorization = request.headers.get("authorization", "") if request is not None else ""
        return {"user": await introspector.username(authorization)}

    inner = mcp.streamable_http_app(streamable_http_path="/mcp")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        if scope["path"] in ("/health", "/seen"):
            body = b'{"status":"ok"}' if scope["path"] == "/health" else json.dumps(_SEEN).encode()
            await _answer(send, 200, body)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        authorization = headers.get("authorization", "")
        if await introspector.username(authorization) is None:
            await _answer(send, 401, b'{"error":"invalid_token"}',
                          extra=[(b"www-authenticate", b'Bearer error="invalid_token"')])
            return
        _SEEN[authorization[-6:]] += 1
        await inner(scope, receive, send)

    return app


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--introspect-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args(argv)
    introspector = Introspector(url=args.introspect_url, client_id=args.client_id,
                                client_secret=args.client_secret)
    uvicorn.run(build_app(introspector), host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real upstream MCP server for integration tests, built with the official ``mcp`` SDK.

Run it as ``python -m tests.support.upstream --port N --transport streamable|sse``. It serves:

- Streamable HTTP at ``/mcp`` (both protocol generations: the stateful 2025 revisions with
  ``initialize``/``Mcp-Session-Id`` and the stateless 2026-07-28 revision), or legacy HTTP+SSE at
  ``/sse`` + ``/messages/``;
- ``GET /health`` (plain 200, for readiness checks that must not open an SSE stream).

Tools:

- ``echo(text)`` → ``text``; ``add(a, b)`` → ``a + b``;
- ``slow_progress(steps, delay, tag="")`` reports progress ``steps`` times, sleeping ``delay`` seconds
  between reports, then returns ``"done <steps>"`` (proves the gateway does not buffer);
- ``request_info()`` (alias ``whoami``) → the HTTP method, path, query string and headers of the
  request that carried this call;
- ``request_log()`` → the same for every HTTP request this process has received (including SSE
  GETs and DELETEs), so a test can prove no credential ever reached the upstream;
- ``active_calls(tag="")`` → how many ``slow_progress`` calls are running, in all and with ``tag``
  (proves cancellation; the tag keeps other tests' calls out of the count);
- ``sleep(seconds)`` answers after ``seconds`` without any progress in between;
- ``secret_tool()`` → ``"classified"`` (for tool-scope tests).

``tools/list`` results carry a *public* cache hint, so the gateway's duty to mark a filtered
list private is observable.

Pytest fixtures (in ``tests.support.fixtures``) start it with ``tests.support.processes.running``:
``upstream_mcp`` (streamable, yields the ``.../mcp`` URL), ``upstream_mcp_sse`` (yields the
``.../sse`` URL) and ``register_upstream`` (creates the ``UpstreamServer`` row).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

SERVER_NAME = "gatehouse-test-upstream"

# Every HTTP request this process received: what a leaked credential would show up in.
_REQUEST_LOG: list[dict[str, Any]] = []
# Running slow_progress calls by the caller's tag, so a test counts only its own calls.
_ACTIVE: collections.Counter[str] = collections.Counter()


def _describe(scope: Scope) -> dict[str, Any]:
    return {
        "method": scope.get("method", ""),
        "path": scope.get("path", ""),
        "query_string": scope.get("query_string", b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
    }


def build_server() -> MCPServer:
    mcp = MCPServer(
        SERVER_NAME,
        version="1.0.0",
        instructions="Test upstream for Gatehouse.",
        cache_hints={"tools/list": CacheHint(ttl_ms=60_000, scope="public")},
    )

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    async def slow_progress(steps: int, delay: float, ctx: Context, tag: str = "") -> str:
        """Report progress ``steps`` times, ``delay`` seconds apart."""
        _ACTIVE[tag] += 1
        try:
            for step in range(1, steps + 1):
                await ctx.report_progress(step, steps, f"step {step}")
                await anyio.sleep(delay)
            return f"done {steps}"
        finally:
            _ACTIVE[tag] -= 1

    @mcp.tool()
    def active_calls(tag: str = "") -> dict[str, int]:
        """How many slow_progress calls run: all, and with ``tag`` (a cancelled one stops counting)."""
        return {"slow_progress": sum(_ACTIVE.values()), "tagged": _ACTIVE[tag]}

    def _request_info(ctx: Context) -> dict[str, Any]:
        request = ctx.request_context.request
        if request is None:
            return {"method": "", "path": "", "query_string": "", "headers": []}
        return _describe(request.scope)

    @mcp.tool()
    def request_info(ctx: Context) -> dict[str, Any]:
        """The method, path, query string and headers of the HTTP request carrying this call."""
        return _request_info(ctx)

    @mcp.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Alias of request_info."""
        return _request_info(ctx)

    @mcp.tool()
    def request_log() -> list[dict[str, Any]]:
        """Every HTTP request this upstream has received so far."""
        return list(_REQUEST_LOG)

    @mcp.tool()
    async def sleep(seconds: float) -> str:
        """Answer after ``seconds``, silently (no progress)."""
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @mcp.tool()
    def secret_tool() -> str:
        """A tool most tokens are not allowed to call."""
        return "classified"

    return mcp


class _Recorder:
    """Records each request and answers ``/health`` without touching the MCP app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/health":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
                return
            _REQUEST_LOG.append(_describe(scope))
        await self.app(scope, receive, send)


def build_app(transport: str, *, json_response: bool = False) -> ASGIApp:
    mcp = build_server()
    if transport == "sse":
        return _Recorder(mcp.sse_app(sse_path="/sse", message_path="/messages/"))
    return _Recorder(mcp.streamable_http_app(streamable_http_path="/mcp", json_response=json_response))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON, not SSE")
    args = parser.parse_args(argv)
    app = build_app(args.transport, json_response=args.json_response)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

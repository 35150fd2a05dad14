"""An SDK upstream whose tool definitions change at runtime, for the tool pinning tests.

Run it as ``python -m tests.support.pinning_upstream --port N [--transport streamable|sse]``.

Tools: ``echo(text)``, ``shifty(x)`` (its definition is the one that changes) and
``announce_change(description)`` (changes ``shifty``'s description, then sends
``notifications/tools/list_changed`` on the caller's stream, as a real upstream would).

Test-only control endpoints, plain HTTP so a test changes the upstream without an MCP client:

- ``POST /control/reset``: the original definitions, no extra tools;
- ``POST /control/describe`` ``{"description": "..."}``: a new description for ``shifty``;
- ``POST /control/schema`` ``{"property": "name"}``: ``shifty`` gains an optional string parameter;
- ``POST /control/add`` ``{"name": "..."}``: a new tool (returns its name);
- ``GET /health``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer

Scope = MutableMapping[str, Any]

SHIFTY_DESCRIPTION = "Return x doubled."


def build_server() -> tuple[MCPServer, dict[str, Any]]:
    mcp = MCPServer("gatehouse-pinning-upstream", version="1.0.0")

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def shifty(x: int) -> int:
        """Return x doubled."""
        return 2 * x

    @mcp.tool()
    async def announce_change(description: str, ctx: Context) -> str:
        """Change shifty's description and tell the client its tool list changed."""
        _shifty(mcp).description = description
        await ctx.request_context.session.send_tool_list_changed()
        return "changed"

    original = {"parameters": copy.deepcopy(_shifty(mcp).parameters), "added": []}
    return mcp, original


def _shifty(mcp: MCPServer) -> Any:
    tool = mcp._tool_manager.get_tool("shifty")
    assert tool is not None
    return tool


class _Control:
    def __init__(self, mcp: MCPServer, original: dict[str, Any], app: Any) -> None:
        self.mcp, self.original, self.app = mcp, original, app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/health" or path.startswith("/control/")):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        args = json.loads(body) if body else {}
        answer = self.control(scope["path"], args)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    def control(self, path: str, args: dict[str, Any]) -> Any:
        shifty = _shifty(self.mcp)
        if path == "/control/reset":
            shifty.description = SHIFTY_DESCRIPTION
            shifty.parameters = copy.deepcopy(self.original["parameters"])
            for name in self.original["added"]:
                self.mcp.remove_tool(name)
            self.original["added"] = []
        elif path == "/control/describe":
            shifty.description = args["description"]
        elif path == "/control/schema":
            params = copy.deepcopy(shifty.parameters)
            params["properties"][args["property"]] = {"type": "string", "title": args["property"]}
            shifty.parameters = params
        elif path == "/control/add":
            name = args["name"]

            def fresh(text: str = "") -> str:
                return f"{name}: {text}"

            self.mcp.add_tool(fresh, name=name, description=f"The new tool {name}.")
            self.original["added"].append(name)
        return {"status": "ok"}


def build_app(transport: str) -> Any:
    mcp, original = build_server()
    if transport == "sse":
        inner = mcp.sse_app(sse_path="/sse", message_path="/messages/")
    else:
        inner = mcp.streamable_http_app(streamable_http_path="/mcp")
    return _Control(mcp, original, inner)


def run_upstream(log_dir: Path, transport: str = "streamable") -> Iterator[str]:
    """Start this upstream as a subprocess; yields its MCP URL (``.../mcp`` or ``.../sse``)."""
    from tests.support.processes import free_port, running

    port = free_port()
    args = [sys.executable, "-m", "tests.support.pinning_upstream", "--port", str(port),
            "--transport", transport]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ready = f"http://127.0.0.1:{port}/health"
    with running(args, env=env, ready_url=ready, log_path=log_dir / "upstream.log"):
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"


def control(upstream: str, action: str, **args: Any) -> None:
    """Call a control endpoint of the upstream at ``upstream`` (its MCP URL)."""
    import httpx

    base = upstream.rsplit("/", 1)[0]
    httpx.post(f"{base}/control/{action}", json=args, timeout=5).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    args = parser.parse_args(argv)
    uvicorn.run(build_app(args.transport), host="127.0.0.1", port=args.port, log_level="warning",
                lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real stdio MCP server for the stdio-runner tests, built with the official ``mcp`` SDK.

Run it as ``python -m tests.support.stdio_server [--exit-at-once MESSAGE]``. Tools:

- ``echo(text)`` → ``text``;
- ``pid()`` → this process's pid (tells ``shared`` from ``session`` isolation, and what to kill);
- ``environment(name)`` → the value of an environment variable (proves ``--env`` arrives);
- ``slow_progress(steps, delay)`` reports progress ``steps`` times, ``delay`` seconds apart, then
  returns ``"done <steps>"`` (proves progress is relayed as it is sent);
- ``remember(text)`` / ``recall()``: per-process state (what ``session`` isolation keeps apart);
- ``secret_tool()`` → ``"classified"`` (for tool-scope tests).

``--exit-at-once MESSAGE`` writes MESSAGE (with ``$NAME`` expanded from the environment, so a
test can make it print a secret it was given) to stderr and exits 3 before speaking MCP: the
"command fails at start" case the runner must show as failed with that line.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer

_MEMORY: list[str] = []


def build_server() -> MCPServer:
    mcp = MCPServer("gatehouse-test-stdio", version="1.0.0")

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def pid() -> int:
        """This server process's pid."""
        return os.getpid()

    @mcp.tool()
    def environment(name: str) -> str:
        """The value of environment variable ``name`` ("" when unset)."""
        return os.environ.get(name, "")

    @mcp.tool()
    async def slow_progress(steps: int, delay: float, ctx: Context) -> str:
        """Report progress ``steps`` times, ``delay`` seconds apart."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            await anyio.sleep(delay)
        return f"done {steps}"

    @mcp.tool()
    def remember(text: str) -> int:
        """Keep ``text`` in this process; returns how many texts it keeps."""
        _MEMORY.append(text)
        return len(_MEMORY)

    @mcp.tool()
    def recall() -> list[str]:
        """What this process was asked to remember."""
        return list(_MEMORY)

    @mcp.tool()
    def secret_tool() -> str:
        """A tool most tokens are not allowed to call."""
        return "classified"

    return mcp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit-at-once", metavar="MESSAGE", default=None)
    args = parser.parse_args(argv)
    if args.exit_at_once is not None:
        print(os.path.expandvars(args.exit_at_once), file=sys.stderr, flush=True)
        return 3
    print("test stdio server starting", file=sys.stderr, flush=True)
    build_server().run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())

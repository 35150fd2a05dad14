"""The test upstream itself answers like an MCP server (so gateway tests compare against it)."""

import anyio
import pytest
from mcp import Client
from mcp.client.sse import sse_client


@pytest.mark.integration
def test_streamable_upstream_lists_tools_in_both_generations(upstream_mcp):
    async def names(mode: str) -> list[str]:
        async with Client(upstream_mcp, mode=mode) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert "slow_progress" in anyio.run(names, "auto")
    assert "secret_tool" in anyio.run(names, "legacy")


@pytest.mark.integration
def test_sse_upstream_answers_tool_calls(upstream_mcp_sse):
    async def call() -> str:
        async with Client(sse_client(upstream_mcp_sse), mode="legacy") as client:
            result = await client.call_tool("echo", {"text": "hi"})
            return result.content[0].text

    assert anyio.run(call) == "hi"


@pytest.mark.integration
def test_register_upstream_stores_encrypted_headers(db, upstream_mcp, register_upstream):
    server = register_upstream(name="demo", url=upstream_mcp, headers={"X-Upstream-Key": "s3cret"})
    assert server.url == upstream_mcp
    assert "s3cret" not in server.headers_encrypted

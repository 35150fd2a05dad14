"""supergateway (what Claude Desktop runs) reaches a stdio server Gatehouse hosts, as any other.

A stdio server on the far side, a stdio client on the near side: Claude Desktop → supergateway →
the gateway (token checked, tools filtered) → the stdio runner → the stdio process.
"""

from __future__ import annotations

import pytest

from tests.gateway.drivers import StdioClient

pytestmark = pytest.mark.integration


def test_supergateway_lists_and_calls_a_stdio_servers_tools(register_stdio, stdio_gateway, make_token,
                                                            supergateway_bin, tmp_path):
    register_stdio("desktop")
    token = make_token({"desktop": ["echo", "pid"]})
    url = stdio_gateway.mcp("desktop")
    args = [supergateway_bin, "--streamableHttp", url, "--oauth2Bearer", token.secret]
    client = StdioClient([*args, "--logLevel", "none"], stderr_path=tmp_path / "supergateway.log")
    try:
        init = client.initialize()
        assert init["result"]["serverInfo"]["name"] == "gatehouse-test-stdio"
        tools = client.request("tools/list")["result"]["tools"]
        assert sorted(t["name"] for t in tools) == ["echo", "pid"]
        echoed = client.request("tools/call", {"name": "echo", "arguments": {"text": "from desktop"}})
        assert echoed["result"]["content"][0]["text"] == "from desktop"
        refused = client.request("tools/call", {"name": "secret_tool", "arguments": {}})
        assert "not allowed" in refused["error"]["message"]
    finally:
        client.close()

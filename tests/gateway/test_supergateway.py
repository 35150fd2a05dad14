"""supergateway (what Claude Desktop runs) reaches the upstream's tools through the gateway.

Driven over stdio with JSON-RPC lines, with the token as ``--oauth2Bearer`` (the console's first
snippet) and as the ``?key=`` fallback URL.
"""

from __future__ import annotations

import pytest

from tests.gateway.drivers import StdioClient

pytestmark = pytest.mark.integration


@pytest.fixture(params=["bearer", "query"])
def supergateway(request, gw, supergateway_bin, tmp_path):
    token = gw.token({"demo": ["echo", "add", "request_log"]})
    url = gw.mcp("demo")
    if request.param == "bearer":
        args = [supergateway_bin, "--streamableHttp", url, "--oauth2Bearer", token.secret]
    else:
        args = [supergateway_bin, "--streamableHttp", f"{url}?key={token.secret}"]
    client = StdioClient([*args, "--logLevel", "none"], stderr_path=tmp_path / "supergateway.log")
    yield client, token
    client.close()


def test_supergateway_lists_and_calls_tools(supergateway):
    client, _ = supergateway
    init = client.initialize()
    assert init["result"]["serverInfo"]["name"] == "gatehouse-test-upstream"
    tools = client.request("tools/list")["result"]["tools"]
    assert sorted(t["name"] for t in tools) == ["add", "echo", "request_log"]
    added = client.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 5}})
    assert added["result"]["structuredContent"] == {"result": 7}
    echoed = client.request("tools/call", {"name": "echo", "arguments": {"text": "desktop"}})
    assert echoed["result"]["content"][0]["text"] == "desktop"


def test_supergateway_gets_a_json_rpc_refusal_for_a_scoped_out_tool(supergateway):
    client, _ = supergateway
    client.initialize()
    refused = client.request("tools/call", {"name": "secret_tool", "arguments": {}})
    assert refused["error"]["code"] == -32602
    assert "not allowed" in refused["error"]["message"]


def test_supergateway_token_never_reaches_the_upstream(supergateway):
    client, token = supergateway
    client.initialize()
    log = client.request("tools/call", {"name": "request_log", "arguments": {}})["result"][
        "structuredContent"
    ]
    raw = repr(log["result"])
    assert token.secret not in raw
    assert "key=" not in raw

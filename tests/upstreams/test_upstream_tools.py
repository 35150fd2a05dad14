"""The issue form's live tool lists: real upstreams answer, unreachable ones degrade to a reason."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from tests.support.processes import free_port
from upstreams.tools import list_upstream_tools

pytestmark = pytest.mark.integration

EXPECTED = {"echo", "add", "secret_tool"}


def test_lists_the_tools_of_a_streamable_upstream(db, upstream_mcp, register_upstream):
    server = register_upstream(name="demo", url=upstream_mcp)
    listing = list_upstream_tools(servers=[server])["demo"]
    assert listing.reachable
    names = {t.name for t in listing.tools}
    assert names >= EXPECTED
    assert next(t for t in listing.tools if t.name == "echo").description == "Return the text unchanged."


def test_lists_the_tools_of_a_legacy_sse_upstream(db, upstream_mcp_sse, register_upstream):
    server = register_upstream(name="legacy", url=upstream_mcp_sse, transport="sse")
    assert {t.name for t in list_upstream_tools(servers=[server])["legacy"].tools} >= EXPECTED


def test_sends_the_servers_credential_headers(db, upstream_mcp, register_upstream):
    server = register_upstream(name="demo", url=upstream_mcp, headers={"X-Upstream-Key": "k-123"})
    assert list_upstream_tools(servers=[server])["demo"].reachable
    # The upstream's own request log shows the header arrived.
    async def seen() -> list:
        async with Client(upstream_mcp, mode="legacy") as client:
            result = await client.call_tool("request_log", {})
            return result.structured_content["result"]

    log = anyio.run(seen)
    assert any(["x-upstream-key", "k-123"] in entry["headers"] for entry in log)


def test_an_unreachable_upstream_gives_a_reason_instead_of_tools(db, register_upstream):
    server = register_upstream(name="down", url=f"http://127.0.0.1:{free_port()}/mcp")
    listing = list_upstream_tools(servers=[server], timeout=2)["down"]
    assert not listing.reachable and listing.tools == []
    assert listing.error == "it could not be reached"


def test_something_that_is_not_mcp_gives_a_reason(transactional_db, live_gateway, register_upstream):
    server = register_upstream(name="notmcp", url=f"{live_gateway.url}/health")
    listing = list_upstream_tools(servers=[server], timeout=2)["notmcp"]
    assert not listing.reachable and listing.error


def test_many_servers_are_asked_together_and_answer_in_order(db, upstream_mcp, register_upstream):
    servers = [
        register_upstream(name="one", url=upstream_mcp),
        register_upstream(name="down", url=f"http://127.0.0.1:{free_port()}/mcp"),
        register_upstream(name="two", url=upstream_mcp),
    ]
    listings = list_upstream_tools(servers=servers, timeout=2)
    assert list(listings) == ["one", "down", "two"]
    assert listings["one"].reachable and listings["two"].reachable and not listings["down"].reachable

"""Acting as CI, over HTTP only: mint a one-tool token with an API key, use it through the gateway
with the MCP SDK against a real upstream, be refused another tool, revoke it, be refused."""

from __future__ import annotations

from io import StringIO

import anyio
import httpx
import httpx2
import pytest
from django.core.management import call_command
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from audit.models import AuditEvent
from tests.factories import UserFactory
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import INIT

pytestmark = pytest.mark.integration


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def mcp_client(url: str, token: str) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30))
    return http, Client(streamable_http_client(url, http_client=http))


@pytest.fixture
def ci_api_key(transactional_db, upstream_mcp, register_upstream) -> str:
    """What an admin does once: register the upstream, create the CI key (command line)."""
    register_upstream(name="demo", url=upstream_mcp)
    UserFactory(username="ci-bot")
    out = StringIO()
    call_command(
        "create_api_key",
        "--user",
        "ci-bot",
        "--servers",
        "demo",
        "--max-ttl",
        "1h",
        "--name",
        "pipeline",
        stdout=out,
    )
    return out.getvalue().splitlines()[-1]


def test_ci_mints_uses_and_revokes_a_one_tool_token(live_gateway, ci_api_key):
    api = f"{live_gateway.url}/api/v1"
    api_headers = {"Authorization": f"Bearer {ci_api_key}"}
    mcp_url = f"{live_gateway.url}/mcp/demo/"

    async def run_ci_job() -> dict:
        seen: dict = {}
        async with httpx.AsyncClient(headers=api_headers, timeout=30) as api_client:
            minted = await api_client.post(
                f"{api}/tokens/",
                json={
                    "name": "ci-42",
                    "servers": ["demo"],
                    "tools": {"demo": ["echo"]},
                    "ttl": "10m",
                },
            )
            assert minted.status_code == 201, minted.text
            token, token_id = minted.json()["token"], minted.json()["id"]

            http, client = mcp_client(mcp_url, token)
            async with http, client:
                seen["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
                seen["echo"] = text_of(await client.call_tool("echo", {"text": "from CI"}))
                try:
                    await client.call_tool("add", {"a": 1, "b": 2})
                    seen["add"] = "allowed"
                except Exception as exc:  # the SDK raises MCPError for the JSON-RPC refusal
                    seen["add"] = str(exc)

                revoked = await api_client.post(
                    f"{api}/tokens/{token_id}/revoke/", json={"reason": "job done"}
                )
                seen["revoke_status"] = revoked.status_code
                # The gateway may trust a verdict for up to 0.5 s (the contract: revocation reaches every
                # request within 1 s), so keep calling until refused, for at most a few seconds.
                seen["open_session_after_revoke"] = "allowed"
                deadline = anyio.current_time() + 5
                while anyio.current_time() < deadline:
                    try:
                        await client.call_tool("echo", {"text": "after revoke"})
                    except Exception as exc:
                        seen["open_session_after_revoke"] = type(exc).__name__
                        break
                    await anyio.sleep(0.1)

        async with httpx.AsyncClient(timeout=30) as raw:
            again = await raw.post(
                mcp_url,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json, text/event-stream",
                    "Content-Type": "application/json",
                    "MCP-Protocol-Version": "2025-06-18",
                },
                json=INIT,
            )
            seen["new_request_after_revoke"] = (again.status_code, again.headers.get("www-authenticate", ""))
        seen["jti"] = minted.json()["jti"]
        return seen

    seen = anyio.run(run_ci_job)

    assert seen["tools"] == ["echo"]
    assert seen["echo"] == "from CI"
    assert "add" in seen["add"] and "not allowed" in seen["add"]
    assert seen["revoke_status"] == 200
    assert seen["open_session_after_revoke"] != "allowed"
    status, challenge = seen["new_request_after_revoke"]
    assert status == 401
    assert challenge.startswith("Bearer")
    for event in ("token.issued", "token.revoked", "mcp.tool_denied"):
        wait_for_event(event=event, token_jti=seen["jti"])  # the gateway audits off its hot path
    assert AuditEvent.objects.filter(event="apikey.used", outcome="success").count() == 2

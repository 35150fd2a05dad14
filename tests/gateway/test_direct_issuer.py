"""Direct use: a trusted issuer's JWT as the bearer token at the gateway, through a real MCP client.

The live gateway (daphne) verifies the provider's id_token against the provider's own key set,
applies the issuer's scope, and refuses it once its subject is cut off or its row revoked.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from audit.models import AuditEvent
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import eventually, sdk_client
from tests.support.issuers import CI_CLIENT, CI_SUBJECT
from tokens.issuers import selectors, services
from tokens.models import Token
from tokens.services import revoke_token

pytestmark = pytest.mark.integration


def _call_echo(url: str, token: str) -> str:
    async def run() -> str:
        async with sdk_client(url, token=token) as client:
            return (await client.call_tool("echo", {"text": "hi"})).content[0].text

    return anyio.run(run)


def _post_initialize(url: str, token: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}",
                                               "Accept": "application/json, text/event-stream"}, timeout=10)


@pytest.fixture
def direct_gw(gw, ci_provider, trust_issuer):
    trust_issuer(direct=True, scope={"demo": ["echo"]})
    return gw


def test_an_issuer_jwt_calls_a_tool_and_is_audited_as_its_subject(direct_gw, ci_provider):
    token = ci_provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])
    assert _call_echo(direct_gw.mcp("demo"), token) == "hi"
    row = Token.objects.get(owner__username=f"gha:{CI_SUBJECT}")
    assert row.name == "gha (direct)" and row.scope == {"demo": ["echo"]}
    call = wait_for_event(event="mcp.tool_call", token_jti=row.jti)
    assert call.owner == f"gha:{CI_SUBJECT}" and call.tool == "echo"
    issued = AuditEvent.objects.get(event="token.issued", token_jti=row.jti)
    assert issued.detail["via"] == "direct" and issued.detail["subject"] == CI_SUBJECT


def test_a_tool_outside_the_issuers_scope_is_refused(direct_gw, ci_provider):
    token = ci_provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])

    async def run() -> None:
        async with sdk_client(direct_gw.mcp("demo"), token=token) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == {"echo"}
            with pytest.raises(MCPError):
                await client.call_tool("add", {"a": 1, "b": 2})

    anyio.run(run)


def test_an_exchange_only_issuer_is_told_to_exchange(gw, ci_provider, trust_issuer):
    trust_issuer(direct=False)
    token = ci_provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])
    response = _post_initialize(gw.mcp("demo"), token)
    assert response.status_code == 401
    assert "/api/v1/token-exchange/" in response.json()["detail"]
    assert token not in gw.server_log.log()


def test_a_cut_off_subject_and_a_revoked_row_are_refused_on_the_next_request(direct_gw, ci_provider):
    token = ci_provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])
    assert _call_echo(direct_gw.mcp("demo"), token) == "hi"
    issuer = selectors.issuer_by_name("gha")
    services.revoke_subject(issuer=issuer, subject=CI_SUBJECT, actor="tests")
    # This process is not the gateway's: it learns of the change from the feed (50 ms poll).
    refused = eventually(
        lambda: (answer := _post_initialize(direct_gw.mcp("demo"), token)).status_code != 200 and answer
    )
    assert refused.status_code == 401 and "cut off" in refused.json()["detail"]
    denied = wait_for_event(event="auth.denied", detail__reason="external_subject_denied")
    assert denied.actor == "external-jwt" and token not in str(denied.detail)

    services.restore_subject(issuer=issuer, subject=CI_SUBJECT, actor="tests")
    fresh = ci_provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])
    assert _call_echo(direct_gw.mcp("demo"), fresh) == "hi"
    revoke_token(token=Token.objects.filter(owner__username=f"gha:{CI_SUBJECT}").latest("created_at"),
                 actor="tests")
    eventually(lambda: _post_initialize(direct_gw.mcp("demo"), fresh).status_code == 401)

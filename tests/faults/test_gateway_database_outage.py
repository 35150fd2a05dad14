"""PostgreSQL goes away under a running gateway.

- The fault: the database is unreachable (connections reset, new ones refused) while MCP
  clients keep sending requests.
- What the client sees: JSON 503 ``database_unavailable`` with ``Retry-After`` (never a 500
  ``internal_error`` or a traceback), and nothing is forwarded: a token that cannot be checked is
  not accepted, so a revoked token gets nothing during an outage either.
- Recovery: the first request after the database is back succeeds (the gateway's database
  threads reconnect once on a dropped connection); the refusals of the outage are audited once
  the audit writer can reach the database again (it holds and retries them meanwhile).

The outage is private to the test: this gateway reaches PostgreSQL through a TCP proxy the test
cuts (``tests.support.tcp_proxy``). SQLite is a file: there is no server to lose.
"""

from __future__ import annotations

import httpx
import pytest
from django.db import connection

from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import INIT, POST_HEADERS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite is a file: there is no server to lose"
    ),
]



def test_the_gateway_answers_json_503_while_the_database_is_down_and_recovers(
    database_outage, upstream_mcp, register_upstream, make_token
):
    outage = database_outage
    register_upstream(name="demo", url=upstream_mcp)
    token = make_token({"demo": None}, name="outage")
    mcp = f"{outage.url}/mcp/demo/"
    headers = {**POST_HEADERS, "X-API-Key": token.secret, "MCP-Protocol-Version": "2025-06-18"}
    assert httpx.post(mcp, json=INIT, headers=headers, timeout=15).status_code == 200

    outage.proxy.cut()
    for _ in range(3):  # the dropped pooled connection, then refused new ones
        down = httpx.post(mcp, json=INIT, headers=headers, timeout=15)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/json")
        assert int(down.headers["retry-after"]) > 0
        assert down.json()["error"] == "database_unavailable"
        assert "Traceback" not in down.text and str(outage.proxy.port) not in down.text

    outage.proxy.restore()
    up = httpx.post(mcp, json=INIT, headers=headers, timeout=15)
    assert up.status_code == 200, up.text
    # The outage's refusals were held by the audit writer and written once it could.
    row = wait_for_event(event="mcp.request", status=503, server="demo", timeout=20)
    assert row.outcome == "error" and row.detail["reason"] == "database_unavailable"

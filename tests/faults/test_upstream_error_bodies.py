"""An upstream answering with an error status and a body that was never meant for the client.

- The fault: an upstream's 500 (or other error status) carries a framework's debug page: a
  traceback, a connection string with ``password=…``.
- What the client sees: the gateway's JSON error instead (``upstream_error``; 502 for a 5xx, a
  4xx keeps its status so a 405 still means "no GET stream here"), never a byte of that body. A
  well-formed JSON-RPC error body is the upstream's answer to the client and passes as it is.
- The operator sees a short, masked excerpt of the replaced body in the log (WARNING).
- Recovery: nothing to recover; each answer is judged on its own.
- No token is accepted that should not be: the credential checks run before any of this.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.hostile import scripted_upstream
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import assert_json_error, post

pytestmark = pytest.mark.integration

DEBUG_PAGE = (
    b"Internal Server Error\n\nTraceback (most recent call last):\n"
    b'  File "/srv/app/db.py", line 12, in connect\n'
    b"    conn = psycopg.connect('host=db.internal user=app password=hunter2')\n"
    b"OperationalError: could not connect\n"
)
PING = {"jsonrpc": "2.0", "id": 3, "method": "ping"}


@pytest.fixture
def gw(live_gateway, transactional_db, register_upstream, make_token):
    """The live gateway; ``gw.ask(server, upstream_url)`` registers the server and pings it."""

    class Gateway:
        log = live_gateway.log

        @staticmethod
        def ask(server: str, url: str):
            register_upstream(name=server, url=url)
            token = make_token({server: None}, name=server)
            return post(f"{live_gateway.url}/mcp/{server}/", PING, headers={"X-API-Key": token.secret})

    return Gateway


def test_an_upstream_500_debug_page_never_reaches_the_client(gw):
    with scripted_upstream(500, {"Content-Type": "text/plain"}, DEBUG_PAGE) as url:
        response = gw.ask("leaky", url)

    body = assert_json_error(response, 502, "upstream_error")
    assert body["detail"] == "The upstream server failed (HTTP 500)."
    for secret in ("hunter2", "Traceback", "db.internal", "psycopg"):
        assert secret not in response.text
    row = wait_for_event(server="leaky", status=502)
    assert row.outcome == "error"
    assert "hunter2" not in json.dumps(row.detail)
    log = gw.log()
    assert "upstream error answer replaced" in log  # the operator gets an excerpt…
    assert "password=***" in log and "hunter2" not in log  # …masked


def test_a_4xx_text_body_is_replaced_but_keeps_its_status(gw):
    with scripted_upstream(405, {"Content-Type": "text/html", "Allow": "POST"}, b"<h1>nope</h1>") as url:
        response = gw.ask("no-get", url)

    assert_json_error(response, 405, "upstream_error")
    assert "<h1>" not in response.text
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("status", [500, 400])
def test_a_jsonrpc_error_body_passes_through(gw, status):
    error = {"code": -32602, "message": "Invalid params: no such thing"}
    answer = {"jsonrpc": "2.0", "id": 3, "error": error}
    raw = json.dumps(answer).encode()
    with scripted_upstream(status, {"Content-Type": "application/json"}, raw) as url:
        response = gw.ask(f"rpc-{status}", url)

    assert response.status_code == status
    assert response.json() == answer

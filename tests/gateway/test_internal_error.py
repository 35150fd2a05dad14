"""A fault inside the gateway is the gateway's problem: a JSON 500, a logged traceback, no secret."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from gateway.admission.db_pool import close_pool_connections
from gateway.flows import streamable as streamable_flow
from gateway.flows.streamable import streamable_http
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import INIT


@pytest.fixture
def broken_upstream_hop(monkeypatch):
    """Make the upstream hop raise something no refusal class covers (a bug of ours)."""

    async def explode(**kwargs):
        raise KeyError("a bug in the gateway")

    monkeypatch.setattr(streamable_flow, "open_upstream", explode)
    yield
    close_pool_connections()  # else PostgreSQL refuses to drop the test database at the end


@pytest.mark.django_db(transaction=True)
def test_a_gateway_fault_becomes_a_logged_json_500_without_the_token(make_token, broken_upstream_hop, caplog):
    token = make_token({"demo": None})
    communicator = HttpCommunicator(
        streamable_http, "POST", "/mcp/demo/", body=json.dumps(INIT).encode(),
        headers=[
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"authorization", f"Bearer {token.secret}".encode()),
        ],
    )
    communicator.scope["url_route"] = {"kwargs": {"server": "demo"}}
    with caplog.at_level(logging.ERROR, logger="gatehouse.gateway"):
        response = async_to_sync(communicator.get_response)(timeout=10)

    assert response["status"] == 500
    body = json.loads(response["body"])
    assert body["error"] == "internal_error" and "a bug in the gateway" not in body["detail"]
    failure = next(r for r in caplog.records if r.getMessage() == "gateway request failed")
    assert "KeyError" in (failure.exc_text or "")  # the traceback, already masked by our filter
    assert token.secret not in caplog.text
    event = wait_for_event(event="mcp.request", status=500, token_jti=token.token.jti)
    assert event.outcome == "error"

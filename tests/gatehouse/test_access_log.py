"""The access log: one masked JSON line per request, and daphne's raw access log stays off."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid

import httpx
import pytest

from core.logging import JsonFormatter, MaskSecretsFilter
from gatehouse.access_log import AccessLogMiddleware
from tests.gatehouse.test_secrets_mask import fake_token
from tests.support.polling import eventually

SIGNATURE = "AccessLogSignatureAccessLogSignatureAccessLog01"
TOKEN = fake_token(jti="acc3ss10gjti", signature=SIGNATURE)


def access_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            line = json.loads(raw)
            if line.get("logger") == "gatehouse.access":
                lines.append(line)
    return lines


def wait_for_access_line(server, path: str, marker: str) -> dict:
    """The access line of our request (the live server is shared with other tests)."""
    def ours() -> dict | None:
        return next((line for line in access_lines(server.log())
                     if line["http"]["path"] == path and marker in line["http"]["query"]), None)

    return eventually(ours, timeout=10, every=0.05,
                      what=lambda: f"an access log line for {path}:\n{server.log()}")


@pytest.mark.integration
def test_live_access_log_is_json_with_credentials_masked(live_gateway, transactional_db):
    marker = f"m{uuid.uuid4().hex}"
    response = httpx.get(f"{live_gateway.url}/accounts/login/",
                         params={"key": TOKEN, "next": "/console/", "m": marker},
                         headers={"User-Agent": "probe/1"})
    assert response.status_code == 200
    httpx.get(f"{live_gateway.url}/no-such-page", params={"api_key": "opaque-secret-value", "m": marker})

    line = wait_for_access_line(live_gateway, "/accounts/login/", marker)
    assert line["http"]["status"] == 200
    assert line["http"]["method"] == "GET"
    assert line["http"]["query"] == f"key=gth_acc3ss10…&next=%2Fconsole%2F&m={marker}"
    assert line["http"]["user_agent"] == "probe/1"
    assert line["http"]["bytes"] > 0
    other = wait_for_access_line(live_gateway, "/no-such-page", marker)
    assert other["http"]["query"] == f"api_key=***&m={marker}"

    log = live_gateway.log()
    assert SIGNATURE not in log and "opaque-secret-value" not in log
    assert '"GET /accounts/login/?' not in log  # daphne's own NCSA-style access line


@pytest.fixture
def access_records():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskSecretsFilter())
    logger = logging.getLogger("gatehouse.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(previous)


def call(app, path: str = "/x", query: bytes = b"") -> None:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": [],
             "client": ("10.0.0.9", 5000)}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        return None

    asyncio.run(app(scope, receive, send))


def test_application_error_is_logged_as_500(access_records):
    async def broken(scope, receive, send):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        call(AccessLogMiddleware(broken))
    assert access_records()[0]["http"]["status"] == 500


def test_successful_probe_is_debug_but_other_requests_are_info(access_records):
    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    call(AccessLogMiddleware(ok), path="/health")
    call(AccessLogMiddleware(ok), path="/console/", query=f"key={TOKEN}".encode())
    health, console = access_records()
    assert health["level"] == "DEBUG"
    assert console["level"] == "INFO"
    assert console["http"]["client_ip"] == "10.0.0.9"
    assert console["http"]["query"] == "key=gth_acc3ss10…"

"""Every refusal is a clean JSON answer with the status the contract fixes, and it is audited."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid

import httpx
import pytest
from django.conf import settings

from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import INIT, POST_HEADERS, assert_json_error, post
from tests.support.clock import LIVE_RATE_WINDOW_SECONDS, at_the_start_of_a_live_window
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

# A refusal at /mcp/demo/ names that endpoint's own RFC 9728 document (path insertion).
METADATA = f'resource_metadata="{settings.PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/demo/"'


def test_missing_token_gets_401_pointing_at_resource_metadata(gw):
    agent = f"refusals-{uuid.uuid4().hex}"  # picks this request's row, not a late one of another test
    response = post(gw.mcp("demo"), headers={"User-Agent": agent})
    assert_json_error(response, 401, "missing_token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and METADATA in challenge
    assert "invalid_token" not in challenge
    denied = wait_for_event(event="auth.denied", status=401, user_agent=agent)
    assert denied.detail["reason"] == "missing_token"
    # What the client was told is what the audit row keeps: no part of it mistaken for a secret.
    assert denied.detail["detail"] == response.json()["detail"]
    assert "Authorization header" in denied.detail["detail"]


def test_garbage_token_gets_401_invalid_token(gw):
    response = post(gw.mcp("demo"), headers={"Authorization": "Bearer gth_not.a.token"})
    assert_json_error(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert METADATA in response.headers["www-authenticate"]


def test_alg_none_token_is_refused(gw):
    real = gw.token({"demo": None}).secret.removeprefix("gth_")
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    )
    forged = f"gth_{header}.{real.split('.')[1]}."
    response = post(gw.mcp("demo"), headers={"Authorization": f"Bearer {forged}"})
    assert_json_error(response, 401, "invalid_token")
    wait_for_event(event="auth.denied", status=401, detail__credential_source="bearer")


def test_token_of_another_server_in_query_gets_403(gw, register_upstream):
    register_upstream(name="other", url=gw.upstream)
    token = gw.token({"other": None})
    response = post(f"{gw.mcp('demo')}?key={token.secret}")
    assert_json_error(response, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    denied = wait_for_event(event="auth.denied", status=403)
    assert denied.token_jti == token.token.jti
    assert token.secret not in json.dumps(denied.detail)


def test_huge_credential_header_gets_clean_401(gw):
    response = post(gw.mcp("demo"), headers={"Authorization": "Bearer gth_" + "A" * 12_000})
    assert_json_error(response, 401, "invalid_token")


def test_credential_header_names_are_case_insensitive(gw):
    token = gw.token({"demo": None})
    for name in ("AUTHORIZATION", "authorization"):
        assert post(gw.mcp("demo"), headers={name: f"Bearer {token.secret}"}).status_code == 200
    for name in ("X-API-KEY", "x-api-key", "X-Api-Key"):
        assert post(gw.mcp("demo"), headers={name: token.secret}).status_code == 200


def test_malformed_json_gets_a_json_rpc_parse_error(gw):
    token = gw.token({"demo": None})
    response = post(
        gw.mcp("demo"), b'{"jsonrpc": "2.0", "id": 1, "method": ', headers={"X-API-Key": token.secret}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == -32700
    wait_for_event(event="auth.denied", status=400, detail__reason="malformed_message")


def test_a_refused_tool_call_sent_as_a_notification_gets_an_http_error_not_a_reply(gw):
    # JSON-RPC never answers a notification; the transport wants an HTTP error for input it refuses.
    token = gw.token({"demo": ["echo"]})
    params = {"name": "secret_tool", "arguments": {}}
    notification = {"jsonrpc": "2.0", "method": "tools/call", "params": params}
    response = post(gw.mcp("demo"), notification, headers={"X-API-Key": token.secret})
    assert response.status_code == 400
    assert response.json()["error"]["data"]["error"] == "insufficient_scope"
    wait_for_event(event="mcp.tool_denied", tool="secret_tool", token_jti=token.token.jti)


def test_header_that_disagrees_with_the_body_is_refused(gw):
    token = gw.token({"demo": ["echo"]})
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "secret_tool",
            "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        },
    }
    headers = {
        "X-API-Key": token.secret,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "echo",
    }
    response = post(gw.mcp("demo"), call, headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert body["id"] == 7
    assert body["error"]["code"] == -32020
    assert "Mcp-Name" in body["error"]["message"]
    wait_for_event(event="auth.denied", status=400, detail__reason="malformed_message")


def test_batch_with_a_refused_tool_is_refused_whole_without_reaching_upstream(gw):
    token = gw.token({"demo": ["echo"]})
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "a"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "secret_tool", "arguments": {}},
        },
    ]
    response = post(gw.mcp("demo"), batch, headers={"X-API-Key": token.secret})
    replies = response.json()
    assert [r["id"] for r in replies] == [1, 2]
    assert all(r["error"]["code"] == -32602 for r in replies)
    denied = wait_for_event(event="mcp.tool_denied", tool="secret_tool")
    assert denied.outcome == "denied"


def test_disallowed_browser_origin_gets_403(gw):
    token = gw.token({"demo": None})
    evil = post(gw.mcp("demo"), headers={"X-API-Key": token.secret, "Origin": "http://evil.example"})
    assert_json_error(evil, 403, "origin_not_allowed")
    own = post(gw.mcp("demo"), headers={"X-API-Key": token.secret, "Origin": settings.PUBLIC_URL})
    assert own.status_code == 200


def test_unsupported_method_gets_405_json(gw):
    token = gw.token({"demo": None})
    response = httpx.put(gw.mcp("demo"), headers={"X-API-Key": token.secret}, timeout=10)
    assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path",
    [
        "/mcp/demo/x", "/mcp//demo/", "/mcp/d%C3%A9mo/", "/mcp/demo;x/", "/sse/", "/messages/",
        "/mcp/" + "a" * 300,
    ],
)
def test_unroutable_gateway_paths_get_a_json_404(gw, path):
    assert_json_error(httpx.post(gw.url + path, timeout=10), 404, "not_found")


def test_disabled_server_gets_404(gw, register_upstream):
    server = register_upstream(name="paused", url=gw.upstream)
    token = gw.token({"paused": None})
    server.enabled = False
    server.save(update_fields=["enabled"])
    assert_json_error(post(gw.mcp("paused"), headers={"X-API-Key": token.secret}), 404, "unknown_server")


def test_unreachable_upstream_gets_502(gw, register_upstream):
    register_upstream(name="down", url=f"http://127.0.0.1:{free_port()}/mcp")
    token = gw.token({"down": None})
    assert_json_error(post(gw.mcp("down"), headers={"X-API-Key": token.secret}), 502, "upstream_unavailable")
    wait_for_event(event="mcp.request", status=502, server="down")


def test_multi_server_token_on_bare_path_is_told_to_name_the_server(gw, register_upstream):
    register_upstream(name="second", url=gw.upstream)
    token = gw.token({"demo": None, "second": None})
    assert_json_error(post(f"{gw.url}/mcp/", headers={"X-API-Key": token.secret}), 400, "server_required")


# --- limits: a gateway with tiny limits (5/h per token, 2 KiB bodies, 1 s upstream timeout) ---------


@pytest.fixture
def strict(gw, strict_gateway):
    gw.url = strict_gateway.url
    return gw


def test_oversize_declared_body_gets_413(strict):
    token = strict.token({"demo": None})
    big = {**INIT, "params": {**INIT["params"], "padding": "x" * 4096}}
    assert_json_error(
        post(strict.mcp("demo"), big, headers={"X-API-Key": token.secret}), 413, "body_too_large"
    )
    wait_for_event(event="auth.denied", status=413)


def test_oversize_streamed_body_without_length_gets_413(strict):
    token = strict.token({"demo": None})

    def chunks():
        yield b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}}'

    response = httpx.post(
        strict.mcp("demo"), content=chunks(), headers={**POST_HEADERS, "X-API-Key": token.secret}, timeout=15
    )
    assert_json_error(response, 413, "body_too_large")


def test_token_over_its_rate_gets_429_with_retry_after(strict):
    token = strict.token({"demo": None})
    # The limit counts per fixed window (an hour here): six requests straddling a window boundary
    # would rightly all pass, so start early in a window.
    at_the_start_of_a_live_window()
    statuses = [post(strict.mcp("demo"), headers={"X-API-Key": token.secret}).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429
    response = post(strict.mcp("demo"), headers={"X-API-Key": token.secret})
    assert_json_error(response, 429, "rate_limited")
    assert response.reason_phrase == "Too Many Requests"  # not daphne's "Unknown Status"
    assert 1 <= int(response.headers["retry-after"]) <= LIVE_RATE_WINDOW_SECONDS
    wait_for_event(event="auth.denied", status=429, token_jti=token.token.jti)


@pytest.fixture
def silent_upstream():
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_upstream_that_does_not_answer_gets_504(strict, register_upstream, silent_upstream):
    register_upstream(name="slow", url=silent_upstream)
    token = strict.token({"slow": None})
    assert_json_error(post(strict.mcp("slow"), headers={"X-API-Key": token.secret}), 504, "upstream_timeout")
    wait_for_event(event="mcp.request", status=504, server="slow")


@pytest.fixture
def crashing_upstream():
    """An upstream that starts an event stream, sends one event, then dies mid-response."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()
    event = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'
    reply = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + f"{len(event):x}\r\n".encode() + event + b"\r\n"
    )

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = sock.accept()[0]
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(reply)
                time.sleep(0.3)  # then close without the terminating chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    stop.set()
    thread.join()
    sock.close()


def test_upstream_dying_mid_stream_ends_the_client_stream_and_is_audited(
    gw, register_upstream, crashing_upstream
):
    register_upstream(name="crashy", url=crashing_upstream)
    token = gw.token({"crashy": None})
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    started = time.monotonic()
    with httpx.stream(
        "POST", gw.mcp("crashy"), json=body, headers={**POST_HEADERS, "X-API-Key": token.secret}, timeout=15
    ) as response:
        assert response.status_code == 200
        received = b"".join(response.iter_bytes())  # must end, not hang until the client gives up
    assert b"notifications/progress" in received
    assert time.monotonic() - started < 10
    event = wait_for_event(event="mcp.request", server="crashy", token_jti=token.token.jti)
    assert (event.outcome, event.status, event.tool) == ("error", 502, "echo")
    assert event.detail["reason"] == "upstream_unavailable"

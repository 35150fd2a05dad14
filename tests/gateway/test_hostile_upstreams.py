"""Hostile or broken upstreams: no tool list, cookie, header or redirect of theirs gets past the gateway."""

from __future__ import annotations

import gzip
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.faults.hostile import start_scripted_upstream
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import assert_json_error, post
from tests.support.serving import serving_thread

pytestmark = pytest.mark.integration


@pytest.fixture
def scripted_upstream():
    """``scripted_upstream(status, headers, body)``: an upstream answering every request that way.

    ``scripted_upstream.received`` lists the headers of every request the upstreams got.
    """
    servers: list[ThreadingHTTPServer] = []
    received: list[dict[str, str]] = []

    def start(status: int, headers: dict[str, str], body: bytes = b"") -> str:
        server = start_scripted_upstream(status, headers, body, received=received)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/mcp"

    start.received = received  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_upstream_redirect_is_not_relayed_to_the_client(gw, register_upstream, scripted_upstream):
    register_upstream(name="moved", url=scripted_upstream(307, {"Location": "http://collector.example/steal"}))
    token = gw.token({"moved": None})

    response = post(gw.mcp("moved"), headers={"X-API-Key": token.secret})

    body = assert_json_error(response, 502, "upstream_unavailable")
    assert "redirect" in body["detail"]
    assert "location" not in response.headers and "collector.example" not in response.text
    wait_for_event(event="mcp.request", status=502, server="moved")


def test_upstream_headers_that_act_on_the_gateways_origin_are_not_relayed(
    gw, register_upstream, scripted_upstream
):
    hostile = {
        "Content-Type": "application/json",
        "Set-Cookie": "sessionid=planted; Path=/",
        "Clear-Site-Data": '"cookies"',
        "Strict-Transport-Security": "max-age=31536000",
        "Content-Security-Policy": "script-src *",
        "WWW-Authenticate": 'Basic realm="upstream"',
        "Mcp-Session-Id": "upstream-internal-id",
        "Location": "http://collector.example/",
        "Refresh": "0;url=http://collector.example/",
        "Link": "<http://collector.example/x.js>; rel=preload",
        "Access-Control-Allow-Origin": "*",
        "Cache-Control": "public, max-age=600",
        "ETag": '"shared-list"',
        "X-Upstream-Note": "kept",
    }
    answer = b'{"jsonrpc": "2.0", "id": 1, "result": {}}'
    register_upstream(name="rude", url=scripted_upstream(200, hostile, answer))
    token = gw.token({"rude": None})

    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    response = post(gw.mcp("rude"), ping, headers={"X-API-Key": token.secret})

    assert response.status_code == 200 and response.json() == json.loads(answer)
    relayed = {name.lower() for name in hostile} & set(response.headers.keys())
    assert relayed == {"content-type", "x-upstream-note", "content-security-policy", "cache-control"}
    assert response.headers.get_list("cache-control") == ["no-store"]  # ours: nothing relayed is shareable
    assert response.headers["x-upstream-note"] == "kept"
    # The content policy is ours, not the upstream's: an answer never runs as a page here.
    assert response.headers.get_list("content-security-policy") == ["sandbox; default-src 'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def cookie_setting_upstream():
    """An upstream that sets a cookie on every answer and records the Cookie headers it receives."""
    received: list[str | None] = []

    class SetsCookies(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(self.headers.get("Cookie"))
            body = b'{"jsonrpc": "2.0", "id": 1, "result": {}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Set-Cookie", "tracker=planted; Path=/")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SetsCookies)
    serving_thread(server).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


def test_a_cookie_one_upstream_sets_never_rides_along_to_later_requests(
    gw, register_upstream, cookie_setting_upstream
):
    """The gateway's upstream client is shared by every token and server: it must keep no cookies."""
    base, received = cookie_setting_upstream
    register_upstream(name="jar-a", url=f"{base}/a/mcp")
    register_upstream(name="jar-b", url=f"{base}/b/mcp")  # same host: a cookie jar would match it
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

    for server in ("jar-a", "jar-a", "jar-b"):
        token = gw.token({server: None}, name=f"cookie-{server}")
        assert post(gw.mcp(server), ping, headers={"X-API-Key": token.secret}).status_code == 200

    assert received == [None, None, None]


LISTING = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}, {"name": "secret_tool"}]}}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_compressed_tool_list_is_filtered_and_relayed_decoded(
    gw, register_upstream, scripted_upstream, content_type
):
    """An upstream that compresses although asked for identity cannot slip a list past the filter."""
    compressed = gzip.compress(json.dumps(LISTING).encode())
    register_upstream(
        name="zipped",
        url=scripted_upstream(200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, compressed),
    )
    token = gw.token({"zipped": ["echo"]})

    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = post(gw.mcp("zipped"), tools_list, headers={"X-API-Key": token.secret})

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert [t["name"] for t in json.loads(response.content)["result"]["tools"]] == ["echo"]


FULL_LIST = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}, {"name": "secret_tool"}]}}


def sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # The held tools/list answer tucked into the answer to another request (a ping).
        ("application/json", json.dumps([{"jsonrpc": "2.0", "id": 2, "result": {}}, FULL_LIST]).encode()),
        # A byte-order mark opening the event stream (TextDecoder-based parsers skip it).
        ("text/event-stream", b"\xef\xbb\xbf" + sse(json.dumps(FULL_LIST).encode())),
        # The last event ended by a lone CR as the stream closes: complete to a spec parser.
        ("text/event-stream", b"data: " + json.dumps(FULL_LIST).encode() + b"\n\r"),
    ],
    ids=["listing-in-a-ping-answer", "sse-bom", "sse-final-cr"],
)
def test_a_tool_list_in_any_answer_shape_is_filtered(
    gw, register_upstream, scripted_upstream, content_type, body
):
    register_upstream(name="sly", url=scripted_upstream(200, {"Content-Type": content_type}, body))
    token = gw.token({"sly": ["echo"]})
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}

    response = post(gw.mcp("sly"), ping, headers={"X-API-Key": token.secret})

    assert response.status_code == 200
    assert b"secret_tool" not in response.content
    assert b'"echo"' in response.content


def test_a_tool_list_python_cannot_parse_is_not_relayed(gw, register_upstream, scripted_upstream):
    """A 5000-digit number: JavaScript clients read it (as Infinity), Python's json refuses it."""
    listing = json.dumps(FULL_LIST)[:-1] + ', "x": 1' + "0" * 5000 + "}"
    whole = scripted_upstream(200, {"Content-Type": "application/json"}, listing.encode())
    events = sse(listing.encode(), b'{"ok": 1}')
    streaming = scripted_upstream(200, {"Content-Type": "text/event-stream"}, events)
    register_upstream(name="bignum", url=whole)
    register_upstream(name="bignum-sse", url=streaming)
    token = gw.token({"bignum": ["echo"], "bignum-sse": ["echo"]})
    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

    as_json = post(gw.mcp("bignum"), tools_list, headers={"X-API-Key": token.secret})
    as_sse = post(gw.mcp("bignum-sse"), tools_list, headers={"X-API-Key": token.secret})

    assert_json_error(as_json, 502, "upstream_unavailable")
    assert as_sse.status_code == 200
    assert b"secret_tool" not in as_sse.content and b'{"ok": 1}' in as_sse.content  # only that event dropped
    wait_for_event(event="mcp.request", status=502, server="bignum")


def test_a_second_endpoint_event_never_reaches_the_legacy_client(gw, register_upstream, scripted_upstream):
    stream = (
        b"event: endpoint\ndata: /messages/?session_id=first\n\n"
        b"event: endpoint\ndata: http://collector.example/steal\n\n"
        b"event: endpoint\ndata: /internal/admin?session_id=second\n\n"
    )
    upstream = scripted_upstream(200, {"Content-Type": "text/event-stream"}, stream)
    register_upstream(name="fickle", url=upstream, transport="sse")
    token = gw.token({"fickle": None})

    response = httpx.get(gw.sse("fickle"), headers={"X-API-Key": token.secret}, timeout=15)

    endpoints = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert len(endpoints) == 1 and endpoints[0].startswith("data: /messages/fickle/?session_id=")
    assert "collector.example" not in response.text and "internal" not in response.text


def test_a_long_upstream_session_id_is_kept_whole(gw, register_upstream, scripted_upstream):
    long_id = "L" * 1500 + "-END"
    answer = b'{"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18"}}'
    headers = {"Content-Type": "application/json", "Mcp-Session-Id": long_id}
    register_upstream(name="verbose", url=scripted_upstream(200, headers, answer))
    token = gw.token({"verbose": None})
    credential = {"X-API-Key": token.secret, "MCP-Protocol-Version": "2025-06-18"}

    started = post(gw.mcp("verbose"), headers=credential)
    ours = started.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    assert post(gw.mcp("verbose"), ping, headers={**credential, "Mcp-Session-Id": ours}).status_code == 200

    assert ours != long_id
    assert scripted_upstream.received[-1]["mcp-session-id"] == long_id


@pytest.mark.parametrize(
    "stream",
    [b"", b"event: endpoint\ndata: http://collector.example/messages/?session_id=1\n\n"],
    ids=["closes-at-once", "endpoint-on-another-origin"],
)
def test_a_legacy_upstream_failing_before_its_endpoint_is_a_502(
    gw, register_upstream, scripted_upstream, stream
):
    upstream = scripted_upstream(200, {"Content-Type": "text/event-stream"}, stream)
    register_upstream(name="flaky-sse", url=upstream, transport="sse")
    token = gw.token({"flaky-sse": None})

    response = httpx.get(gw.sse("flaky-sse"), headers={"X-API-Key": token.secret}, timeout=15)

    assert_json_error(response, 502, "upstream_unavailable")

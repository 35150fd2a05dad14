"""Traces: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, each gateway request is one span, exported over
OTLP/HTTP, and the upstream hop carries that span's ``traceparent``; without it, nothing changes.

The collector here is a real OTLP/HTTP endpoint in the test process that decodes what it receives
with the OpenTelemetry protobuf definitions, so the spans checked are the bytes a collector gets.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.gateway.drivers import MCP_HEADERS, initialize
from tests.support.processes import free_port, running, serve_args, subprocess_env
from tests.support.serving import serving_thread
from tokens.services import IssuedToken

pytestmark = pytest.mark.integration

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-00f067aa0ba902b7-01"
TRACEPARENT = re.compile(r'traceparent\\?"\s*[:,]\s*\\?"(00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2})')


class Collector:
    def __init__(self) -> None:
        self.spans: list = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [span for span in self.spans if predicate(span)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError("no such span reached the collector")


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    received = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.bodies.append(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        received.spans.extend(scope_spans.spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = serving_thread(server)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def traced_gateway(django_db_setup, django_db_blocker, tmp_path_factory, collector) -> Iterator[str]:
    _, collector_port = collector
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne-traced") / "daphne.log"
    with django_db_blocker.unblock():
        env = subprocess_env({
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        })
    with running(serve_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield f"http://127.0.0.1:{port}"


def attributes(span) -> dict:
    out = {}
    for item in span.attributes:
        value = item.value
        out[item.key] = value.string_value if value.HasField("string_value") else value.int_value
    return out


def call_tool(url: str, token: str, session_id: str, tool: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", "Mcp-Session-Id": session_id,
               "traceparent": CLIENT_TRACEPARENT}
    return httpx.post(url, json=body, headers=headers, timeout=15)


@dataclass(frozen=True)
class Traced:
    name: str
    issued: IssuedToken
    mcp: str
    session_id: str


def traced_session(gw, gateway_url: str, register_upstream, tools: list[str]) -> Traced:
    """A server of this test's own behind ``gateway_url``, a token for ``tools``, and a session."""
    name = f"t{uuid.uuid4().hex[:8]}"
    register_upstream(name=name, url=gw.upstream)
    issued = gw.token({name: tools})
    mcp = f"{gateway_url}/mcp/{name}/"
    return Traced(name=name, issued=issued, mcp=mcp, session_id=initialize(mcp, issued.secret))


def test_a_forwarded_call_is_one_span_and_the_upstream_is_its_child(gw, traced_gateway, collector,
                                                                    register_upstream):
    received, _ = collector
    traced = traced_session(gw, traced_gateway, register_upstream, ["request_info"])
    name, issued, mcp, session_id = traced.name, traced.issued, traced.mcp, traced.session_id

    response = call_tool(mcp, issued.secret, session_id, "request_info")
    assert response.status_code == 200, response.text
    _, trace_id, parent_id = TRACEPARENT.search(response.text).groups()
    # A new trace: the client's trace id is not continued, and its header never reached upstream.
    assert trace_id != CLIENT_TRACE_ID
    assert CLIENT_TRACEPARENT not in response.text

    span = received.wait_for(lambda s: s.span_id.hex() == parent_id)
    assert span.trace_id.hex() == trace_id
    assert span.kind == span.SPAN_KIND_SERVER
    attrs = attributes(span)
    assert attrs["gatehouse.server"] == name
    assert attrs["gatehouse.tool"] == "request_info"
    assert attrs["rpc.method"] == "tools/call"
    assert attrs["gatehouse.outcome"] == "success"
    assert attrs["http.response.status_code"] == 200
    assert attrs["gatehouse.token.prefix"] == issued.token.display_prefix
    assert attrs["gatehouse.session.id"] == session_id
    # The client's trace is linked, not adopted.
    assert [link.trace_id.hex() for link in span.links] == [CLIENT_TRACE_ID]
    with received.lock:
        exported = b"".join(received.bodies)
    assert issued.secret.encode() not in exported
    assert issued.secret.removeprefix("gth_").encode() not in exported


def test_refusals_are_spans_that_say_why(gw, traced_gateway, collector, register_upstream):
    received, _ = collector
    traced = traced_session(gw, traced_gateway, register_upstream, ["echo"])
    name, issued, mcp, session_id = traced.name, traced.issued, traced.mcp, traced.session_id

    call_tool(mcp, issued.secret, session_id, "secret_tool")
    denied = received.wait_for(lambda s: attributes(s).get("gatehouse.tool") == "secret_tool"
                               and attributes(s).get("gatehouse.server") == name)
    assert attributes(denied)["gatehouse.refusal.reason"] == "tool_not_in_scope"
    assert attributes(denied)["gatehouse.outcome"] == "denied"
    assert denied.status.code == denied.status.STATUS_CODE_ERROR

    httpx.post(mcp, json={}, headers={**MCP_HEADERS, "Authorization": "Bearer gth_forged.jwt.value"})
    unauthenticated = received.wait_for(lambda s: attributes(s).get("gatehouse.server") == name
                                        and attributes(s).get("http.response.status_code") == 401)
    assert attributes(unauthenticated)["gatehouse.refusal.reason"] == "invalid_token"
    with received.lock:
        assert b"forged.jwt.value" not in b"".join(received.bodies)


def test_without_an_endpoint_the_gateway_forwards_the_clients_trace_context_untouched(gw, register_upstream):
    plain = traced_session(gw, gw.url, register_upstream, ["request_info"])
    response = call_tool(plain.mcp, plain.issued.secret, plain.session_id, "request_info")
    assert TRACEPARENT.search(response.text).group(1) == CLIENT_TRACEPARENT

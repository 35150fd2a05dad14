"""Authorization reads the JSON-RPC body; routing headers that disagree with it are refused."""

import base64

import pytest

from gateway.mcp.protocol import (
    HEADER_MISMATCH,
    INVALID_REQUEST,
    PARSE_ERROR,
    MalformedMessage,
    check_headers_agree,
    parse_body,
)

MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


def call(name="echo", **arguments):
    return parse_body(
        f'{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{name}",'
        f'"arguments":{_json(arguments)},"_meta":{_json(MODERN_META)}}}}}'.encode()
    )


def _json(value):
    import json

    return json.dumps(value)


def test_matching_modern_headers_pass():
    check_headers_agree(
        call(), [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "echo")]
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("mcp-method", "tools/list")],
        [("mcp-name", "add")],
        [("mcp-protocol-version", "2025-06-18")],
        [("mcp-name", "echo"), ("mcp-name", "echo")],
        [("mcp-param-region", "eu")],
    ],
)
def test_disagreeing_or_duplicated_headers_are_refused(headers):
    with pytest.raises(MalformedMessage) as refused:
        check_headers_agree(call(region="us"), headers)
    assert refused.value.code == HEADER_MISMATCH
    assert refused.value.request_id == 3


def test_param_header_must_carry_a_value_the_body_carries():
    check_headers_agree(
        call(region="eu", count=3, on=True),
        [("mcp-param-r", "eu"), ("mcp-param-c", "3"), ("mcp-param-o", "true")],
    )


def test_base64_wrapped_name_header_is_decoded_before_comparing():
    wrapped = "=?base64?" + base64.b64encode("échо".encode()).decode() + "?="
    check_headers_agree(call("échо"), [("mcp-name", wrapped)])
    with pytest.raises(MalformedMessage):
        check_headers_agree(call("other"), [("mcp-name", wrapped)])


def test_modern_header_without_body_meta_is_refused():
    body = parse_body(b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    with pytest.raises(MalformedMessage):
        check_headers_agree(body, [("mcp-protocol-version", "2026-07-28")])


def test_routing_headers_on_a_batch_are_refused():
    batch = parse_body(b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]')
    with pytest.raises(MalformedMessage):
        check_headers_agree(batch, [("mcp-method", "ping")])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", PARSE_ERROR),
        (b"[]", INVALID_REQUEST),
        (b'{"id": 1, "method": "ping"}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}', INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}', -32602),
        (b'"just a string"', INVALID_REQUEST),
        (b"[" * 100_000, PARSE_ERROR),  # deeper than json can nest: a parse error, not a crash
        # A repeated key: authorized as "echo" (Python keeps the last), run as "secret_tool" by an
        # upstream whose parser keeps the first.
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call",'
            b' "params": {"name": "secret_tool", "name": "echo"}}',
            INVALID_REQUEST,
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "ping"}', INVALID_REQUEST),
    ],
)
def test_malformed_bodies_are_refused_with_json_rpc_codes(body, code):
    with pytest.raises(MalformedMessage) as refused:
        parse_body(body)
    assert refused.value.code == code

"""tools/list results are filtered to the allowlist and never left shareable; calls outside it refused."""

import json

import pytest

from gateway.mcp.policy import filter_tools_payload, refuse_denied_tools
from gateway.mcp.protocol import parse_body
from gateway.request.refusals import Refusal, jsonrpc_body
from tokens.scope import TokenScope

LISTING = {
    "jsonrpc": "2.0",
    "id": 2,
    "result": {"tools": [{"name": "echo"}, {"name": "secret_tool"}], "ttlMs": 60000, "cacheScope": "public"},
}


def test_list_is_filtered_to_the_allowlist_and_marked_private():
    filtered = json.loads(filter_tools_payload(json.dumps(LISTING), frozenset({"echo"})))
    assert filtered["result"]["tools"] == [{"name": "echo"}]
    assert filtered["result"]["cacheScope"] == "private"
    assert filtered["result"]["ttlMs"] == 60000


def test_unrestricted_list_keeps_its_tools_but_is_still_private():
    filtered = json.loads(filter_tools_payload(json.dumps(LISTING).encode(), None))
    assert len(filtered["result"]["tools"]) == 2
    assert filtered["result"]["cacheScope"] == "private"


def test_older_revisions_get_no_cache_fields_added():
    old = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "echo"}, {"name": "x"}]}}
    filtered = json.loads(filter_tools_payload(json.dumps(old), frozenset({"echo"})))
    assert filtered["result"] == {"tools": [{"name": "echo"}]}


def test_batch_responses_are_filtered_element_by_element():
    batch = [LISTING, {"jsonrpc": "2.0", "id": 3, "result": {"content": []}}]
    filtered = json.loads(filter_tools_payload(json.dumps(batch), frozenset()))
    assert filtered[0]["result"]["tools"] == []
    assert filtered[1] == batch[1]


def test_other_messages_are_left_alone():
    assert (
        filter_tools_payload('{"jsonrpc":"2.0","method":"notifications/progress","params":{}}', None) is None
    )
    assert (
        filter_tools_payload('{"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"tools"}]}}', None) is None
    )


def test_call_outside_the_allowlist_is_refused_with_its_id():
    body = parse_body(b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"secret_tool"}}')
    with pytest.raises(Refusal) as refused:
        refuse_denied_tools(
            body=body,
            scope=TokenScope.from_mapping({"demo": ["echo"]}),
            server="demo",
            protocol_version="2025-06-18",
        )
    reply = json.loads(jsonrpc_body(refused.value))
    assert reply["id"] == 9 and reply["error"]["code"] == -32602
    assert refused.value.status == 200


def test_allowed_call_and_unrestricted_scope_pass():
    body = parse_body(b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo"}}')
    refuse_denied_tools(
        body=body, scope=TokenScope.from_mapping({"demo": ["echo"]}), server="demo", protocol_version=None
    )
    refuse_denied_tools(
        body=body, scope=TokenScope.from_mapping({"demo": None}), server="demo", protocol_version=None
    )


@pytest.mark.parametrize(
    "payload",
    [
        # "tools" spelled with a JSON escape: the same key to every parser.
        json.dumps(LISTING).replace('"tools"', '"\\u0074ools"').encode(),
        # One byte that is not UTF-8 (a latin-1 description): lenient decoders replace it and parse.
        json.dumps(LISTING).encode().replace(b'"secret_tool"}', b'"secret_tool", "description": "caf\xe9"}'),
        # A byte-order mark, which TextDecoder-based clients skip.
        b"\xef\xbb\xbf" + json.dumps(LISTING).encode(),
    ],
    ids=["escaped-key", "invalid-utf8", "bom"],
)
def test_a_listing_any_client_could_parse_is_filtered(payload):
    filtered = filter_tools_payload(payload, frozenset({"echo"}))

    assert filtered is not None
    assert [t["name"] for t in json.loads(filtered)["result"]["tools"]] == ["echo"]

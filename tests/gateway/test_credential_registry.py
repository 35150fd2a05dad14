"""A credential kind is one class in the registry: extraction, stripping and audit all follow it."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from gateway.admission import credentials
from gateway.admission.credentials import CredentialKind, RequestParts, extract_credential
from gateway.admission.db_pool import close_pool_connections
from gateway.flows.streamable import streamable_http
from gateway.request.incoming import Incoming
from gateway.upstream.hop import forward_headers, upstream_url
from tests.gateway.audit_wait import wait_for_event

TEST_HEADER = "x-gatehouse-test-token"


class TestTokenHeader(CredentialKind):
    __test__ = False  # a credential kind, not a test class

    source = TEST_HEADER
    header_names = frozenset({TEST_HEADER})

    def find(self, request: RequestParts) -> str | None:
        return request.headers.get(TEST_HEADER) or None


@pytest.fixture
def test_token_header(monkeypatch):
    """The one place the throwaway kind is added: appended to the registry, last in priority."""
    monkeypatch.setattr(credentials, "CREDENTIAL_KINDS", [*credentials.CREDENTIAL_KINDS, TestTokenHeader()])


def _incoming(headers: list[tuple[str, str]], query: str = "") -> Incoming:
    scope = {
        "method": "POST", "path": "/mcp/demo/", "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    return Incoming.from_scope(scope)


def test_extraction_finds_the_new_kind(test_token_header):
    found = extract_credential([("X-Gatehouse-Test-Token", "gth_test.secret")], "")
    assert (found.raw, found.source) == ("gth_test.secret", TEST_HEADER)


def test_the_new_kind_comes_after_the_existing_ones(test_token_header):
    found = extract_credential([(TEST_HEADER, "gth_test.secret"), ("x-api-key", "gth_b")], "")
    assert found.source == "x-api-key"


def test_forwarding_strips_the_new_kind(test_token_header):
    secret = "gth_test.secret"
    incoming = _incoming([(TEST_HEADER, secret), ("accept", "application/json")])
    forwarded = forward_headers(incoming, server_headers={}, upstream_session_id=None, credential=secret)
    assert TEST_HEADER not in {name for name, _ in forwarded}
    assert ("accept", "application/json") in forwarded


@pytest.mark.django_db(transaction=True)
def test_the_audit_row_names_the_new_kind_as_credential_source(test_token_header):
    communicator = HttpCommunicator(
        streamable_http, "POST", "/mcp/demo/", body=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        headers=[(b"content-type", b"application/json"), (TEST_HEADER.encode(), b"gth_not.a.token")],
    )
    communicator.scope["url_route"] = {"kwargs": {"server": "demo"}}
    try:
        response = async_to_sync(communicator.get_response)(timeout=10)
    finally:
        close_pool_connections()  # else PostgreSQL refuses to drop the test database at the end

    assert response["status"] == 401  # presented (invalid), not missing
    assert b"invalid_token" in response["body"]
    denied = wait_for_event(event="auth.denied", status=401, detail__credential_source=TEST_HEADER)
    assert "gth_not.a.token" not in str(denied.detail)


# --- the existing kinds, as a specification --------------------------------------------------------


def test_the_registry_order_is_bearer_then_api_key_then_query():
    assert [kind.source for kind in credentials.CREDENTIAL_KINDS] == ["bearer", "x-api-key", "query"]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([("authorization", "Bearer gth_a"), ("x-api-key", "gth_b")], "key=gth_c", ("gth_a", "bearer")),
        ([("x-api-key", "gth_b")], "key=gth_c", ("gth_b", "x-api-key")),
        ([], "key=gth_c", ("gth_c", "query")),
        ([("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "gth_b")], "", ("gth_b", "x-api-key")),
        ([("x-api-key", "  ")], "key=gth_c", ("gth_c", "query")),
    ],
    ids=["bearer-first", "api-key-second", "query-last", "basic-is-no-bearer", "blank-api-key-skipped"],
)
def test_first_found_wins(headers, query, expected):
    found = extract_credential(headers, query)
    assert (found.raw, found.source) == expected


def test_every_kind_is_stripped_from_what_is_forwarded():
    incoming = _incoming(
        [("authorization", "Bearer gth_tok"), ("x-api-key", "gth_b"), ("proxy-authorization", "Basic x"),
         ("accept", "*/*")],
        query="key=gth_c&a=1",
    )
    forwarded = forward_headers(incoming, server_headers={}, upstream_session_id=None, credential="gth_tok")
    assert {name for name, _ in forwarded} == {"accept", "accept-encoding"}
    assert upstream_url("http://up/mcp", incoming.query_string, credential="gth_tok") == "http://up/mcp?a=1"



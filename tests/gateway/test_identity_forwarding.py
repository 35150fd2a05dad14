"""Identity to upstreams, live: a real gateway in front of a real upstream that echoes the headers
it receives (``request_info``, ``request_log``). The assertion's claims and typ, verified the way
an upstream would (PyJWKClient on the gateway's JWKS); spoofing; reuse; key rotation; audit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import jwt
import pytest
from django.conf import settings

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding
from gateway.services import end_session
from tests.gateway.audit_wait import wait_for_event
from tests.gateway.drivers import INIT, MCP_HEADERS, call, initialize, sdk_sse_client, sse_result
from tests.support.fixtures import _run_upstream
from tokens.models import IDENTITY_ASSERTION_TYP
from tokens.signing_keys import prune_signing_keys, rotate_signing_key

pytestmark = pytest.mark.integration


def _headers_seen(response: httpx.Response) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in sse_result(response)["result"]["structuredContent"]["headers"]]


def _one(headers: list[tuple[str, str]], name: str) -> str:
    values = [v for k, v in headers if k == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def _bearer_assertion(response: httpx.Response) -> str:
    value = _one(_headers_seen(response), "authorization")
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def _verify(gw, assertion: str, audience: str) -> dict:
    """As an upstream does: the key from the gateway's JWKS by kid; iss, aud, exp, typ checked."""
    assert jwt.get_unverified_header(assertion)["typ"] == IDENTITY_ASSERTION_TYP
    jwks = jwt.PyJWKClient(f"{gw.url}/.well-known/jwks.json", cache_keys=False)
    key = jwks.get_signing_key_from_jwt(assertion)
    return jwt.decode(
        assertion, key.key, algorithms=["EdDSA", "ES256"], audience=audience, issuer=settings.TOKEN_ISSUER,
        options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]},
    )


# Upstreams of their own: other tests read the shared upstreams' request logs for any
# Authorization header, and these get one on every request.
@pytest.fixture(scope="module")
def echo_upstream(tmp_path_factory) -> Iterator[str]:
    yield from _run_upstream(tmp_path_factory, "streamable")


@pytest.fixture(scope="module")
def echo_upstream_sse(tmp_path_factory) -> Iterator[str]:
    yield from _run_upstream(tmp_path_factory, "sse")


@pytest.fixture
def who(gw, register_upstream, echo_upstream):
    """``who``: an echoing upstream with identity forwarding on (default header)."""
    register_upstream(name="who", url=echo_upstream, forward_identity=True)
    gw.upstream = echo_upstream  # what this module's tests mean by "the upstream"
    return gw


def test_each_request_carries_a_signed_audience_bound_assertion(who, user):
    gw = who
    token = gw.token({"who": ["request_info", "echo"]})
    session_id = initialize(gw.mcp("who"), token.secret)
    assertion = _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info"))

    header = jwt.get_unverified_header(assertion)
    assert header["typ"] == "gatehouse-identity+jwt" and header["kid"]
    claims = _verify(gw, assertion, audience=gw.upstream)
    assert claims["iss"] == settings.TOKEN_ISSUER
    assert claims["aud"] == gw.upstream
    assert claims["sub"] == user.username
    assert claims["exp"] - claims["iat"] <= 300
    assert claims["client_id"] == token.token.jti
    assert claims["scope"] == "echo request_info"
    assert claims["sid"] == session_id
    assert token.secret.removeprefix("gth_") not in assertion


def test_all_tools_is_star_and_a_server_without_the_setting_gets_nothing(who, register_upstream):
    gw = who
    token = gw.token({"who": None, "demo": None})
    session_id = initialize(gw.mcp("who"), token.secret)
    claims = _verify(gw, _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info")),
                     audience=gw.upstream)
    assert claims["scope"] == "*"
    # The same upstream registered without the setting: no identity, no client credential.
    register_upstream(name="demo", url=gw.upstream)
    session_id = initialize(gw.mcp("demo"), token.secret)
    seen = _headers_seen(call(gw.mcp("demo"), token.secret, session_id, "request_info"))
    assert "authorization" not in dict(seen)


def test_a_client_cannot_spoof_the_identity_header(gw, register_upstream, echo_upstream):
    gw.upstream = echo_upstream
    register_upstream(
        name="who-x", url=gw.upstream, forward_identity=True, identity_header="X-Gatehouse-Identity",
        headers={"Authorization": "Bearer upstream-static"},
    )
    token = gw.token({"who-x": None})
    session_id = initialize(gw.mcp("who-x"), token.secret)
    forged = {"X-Gatehouse-Identity": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."}
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "request_info"}}
    headers = {**MCP_HEADERS, **forged, "Authorization": f"Bearer {token.secret}"}
    headers["Mcp-Session-Id"] = session_id
    response = httpx.post(gw.mcp("who-x"), json=body, headers=headers, timeout=15)
    seen = _headers_seen(response)
    assertion = _one(seen, "x-gatehouse-identity")  # exactly one: ours
    assert _verify(gw, assertion, audience=gw.upstream)["sub"] == token.token.owner.username
    assert _one(seen, "authorization") == "Bearer upstream-static"


def test_an_assertion_presented_to_the_gateway_is_refused_and_audited(who):
    gw = who
    token = gw.token({"who": None})
    session_id = initialize(gw.mcp("who"), token.secret)
    assertion = _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info"))
    for presented in (assertion, f"gth_{assertion}"):
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {presented}"}
        response = httpx.post(gw.mcp("who"), json=INIT, headers=headers, timeout=15)
        assert response.status_code == 401
        assert "identity assertion" in response.json()["detail"]
    row = wait_for_event(event=events.AUTH_DENIED, detail__reason="identity_assertion_presented")
    assert row.status == 401 and "identity assertion" in row.detail["detail"]
    assert assertion not in str(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_reused_within_a_session_new_for_another_session_or_token(who):
    gw = who
    alice = gw.token({"who": None}, name="alice-token")
    first_session = initialize(gw.mcp("who"), alice.secret)
    one = _bearer_assertion(call(gw.mcp("who"), alice.secret, first_session, "request_info"))
    two = _bearer_assertion(call(gw.mcp("who"), alice.secret, first_session, "request_info"))
    assert one == two
    other_session = initialize(gw.mcp("who"), alice.secret)
    three = _bearer_assertion(call(gw.mcp("who"), alice.secret, other_session, "request_info"))
    assert three != one and _verify(gw, three, gw.upstream)["sid"] == other_session
    second = gw.token({"who": None}, name="second-token")
    second_session = initialize(gw.mcp("who"), second.secret)
    four = _bearer_assertion(call(gw.mcp("who"), second.secret, second_session, "request_info"))
    assert four not in (one, three) and _verify(gw, four, gw.upstream)["client_id"] == second.token.jti


def test_keeps_verifying_across_a_signing_key_rotation(who):
    gw = who
    token = gw.token({"who": None})
    session_id = initialize(gw.mcp("who"), token.secret)
    before = _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info"))
    old_kid = jwt.get_unverified_header(before)["kid"]
    _verify(gw, before, gw.upstream)

    new = rotate_signing_key(actor="tests")
    assert prune_signing_keys(actor="tests") == []  # the old key's assertions are still about
    again = _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info"))
    assert _verify(gw, again, gw.upstream)["sid"] == session_id
    assert _verify(gw, before, gw.upstream)["sub"] == token.token.owner.username

    # Within seconds every process signs new assertions with the new active key.
    deadline = time.monotonic() + 20
    while True:
        fresh_session = initialize(gw.mcp("who"), token.secret)
        fresh = _bearer_assertion(call(gw.mcp("who"), token.secret, fresh_session, "request_info"))
        if jwt.get_unverified_header(fresh)["kid"] == new.kid or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert jwt.get_unverified_header(fresh)["kid"] == new.kid != old_kid
    _verify(gw, fresh, gw.upstream)


def test_audit_names_the_forwarded_identity_never_the_assertion(who):
    gw = who
    token = gw.token({"who": None})
    session_id = initialize(gw.mcp("who"), token.secret)
    assertion = _bearer_assertion(call(gw.mcp("who"), token.secret, session_id, "request_info"))
    row = wait_for_event(event=events.MCP_TOOL_CALL, server="who", tool="request_info")
    assert row.detail["forwarded_identity"] == {"sub": token.token.owner.username, "header": "Authorization"}
    assert assertion not in str(list(AuditEvent.objects.values_list("detail", flat=True)))
    assert assertion not in gw.server_log.log() and assertion.split(".")[2] not in gw.server_log.log()


def _deletes_seen(gw, token: str, upstream_session_id: str) -> list[dict]:
    session_id = initialize(gw.mcp("who"), token)
    log = sse_result(call(gw.mcp("who"), token, session_id, "request_log"))["result"]["structuredContent"]
    entries = log["result"] if isinstance(log, dict) else log
    return [
        e for e in entries
        if e["method"] == "DELETE" and ["mcp-session-id", upstream_session_id] in e["headers"]
    ]


def test_session_ends_carry_the_identity_too(who):
    gw = who
    token = gw.token({"who": None})
    # A client's DELETE is forwarded with the assertion like any request.
    session_id = initialize(gw.mcp("who"), token.secret)
    upstream_sid = SessionBinding.objects.get(pk=session_id).upstream_session_id
    headers = {**MCP_HEADERS, "X-API-Key": token.secret, "Mcp-Session-Id": session_id}
    response = httpx.delete(gw.mcp("who"), headers=headers, timeout=15)
    assert response.status_code < 300
    [deleted] = _deletes_seen(gw, token.secret, upstream_sid)
    value = dict(deleted["headers"])["authorization"].removeprefix("Bearer ")
    assert _verify(gw, value, gw.upstream)["sid"] == session_id

    # The sweep's (or an admin's) DELETE has no request: it signs for the session's owner.
    session_id = initialize(gw.mcp("who"), token.secret)
    upstream_sid = SessionBinding.objects.get(pk=session_id).upstream_session_id
    assert end_session(
        session_id=session_id, status=SessionBinding.Status.TERMINATED, reason="test", actor="tests",
        notify_upstream=True,
    )
    [deleted] = _deletes_seen(gw, token.secret, upstream_sid)
    claims = _verify(gw, dict(deleted["headers"])["authorization"].removeprefix("Bearer "), gw.upstream)
    assert claims["sid"] == session_id and claims["sub"] == token.token.owner.username


def test_legacy_sse_carries_it_on_the_stream_and_on_each_message(gw, register_upstream, echo_upstream_sse):
    gw.upstream_sse = echo_upstream_sse
    register_upstream(name="who-sse", url=gw.upstream_sse, transport="sse", forward_identity=True)
    token = gw.token({"who-sse": None})

    async def run() -> list[tuple[str, str]]:
        async with sdk_sse_client(gw.sse("who-sse"), token=token.secret) as client:
            result = await client.call_tool("request_info", {})
            return [tuple(p) for p in result.structured_content["headers"]]

    seen = anyio.run(run)
    claims = _verify(gw, _one(seen, "authorization").removeprefix("Bearer "), gw.upstream_sse)
    binding = SessionBinding.objects.filter(server__name="who-sse").latest("created_at")
    assert claims["sid"] == binding.pk and claims["sub"] == token.token.owner.username

"""``examples/multi_user_notes``: a real multi-user MCP server (official SDK) behind a live
Gatehouse with ``--forward-identity``. Through real clients (the SDK's, and supergateway as Claude
Desktop runs it) each user sees only their own notes; a call that bypasses Gatehouse is 401."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import anyio
import httpx
import jwt
import pytest
from django.conf import settings

from tests.factories import UserFactory
from tests.gateway.drivers import (
    INIT,
    MCP_HEADERS,
    StdioClient,
    call,
    initialize,
    sdk_client,
    sse_result,
    text_of,
)
from tests.support.processes import REPO_ROOT, free_port, running
from tokens.assertions import identity_assertion
from tokens.services import authenticate_token
from upstreams.target import enabled_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def notes_url(live_gateway, tmp_path_factory) -> Iterator[str]:
    """The example, started as docs/identity.md says, verifying against the live gateway's JWKS."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = dict(os.environ, GATEHOUSE_URL=live_gateway.url, GATEHOUSE_ISSUER=settings.TOKEN_ISSUER,
               NOTES_URL=url, PYTHONUNBUFFERED="1")
    server = REPO_ROOT / "examples" / "multi_user_notes" / "server.py"
    args = [sys.executable, str(server), "--port", str(port)]
    log_path = tmp_path_factory.mktemp("notes") / "notes.log"
    ready = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
    with running(args, env=env, ready_url=ready, log_path=log_path):
        yield url


@pytest.fixture
def notes(gw, register_upstream, notes_url):
    register_upstream(name="notes", url=notes_url, forward_identity=True)
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    tokens = (
        gw.make_token({"notes": None}, owner=alice, name="alice-notes", ttl=timedelta(hours=1)),
        gw.make_token({"notes": None}, owner=bob, name="bob-notes", ttl=timedelta(hours=1)),
    )
    # Each test's fresh database has a fresh signing key: a rotation, as the example sees it. It
    # picks the key up from the JWKS at most a second after its previous fetch; wait for that.
    target = enabled_target("notes")
    assert target is not None
    probe = identity_assertion(token=authenticate_token(raw_token=tokens[0].secret), server=target)
    deadline = time.monotonic() + 5
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {probe}"}
    while httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code != 200:
        assert time.monotonic() < deadline, "the example never accepted the gateway's current key"
        time.sleep(0.2)
    return tokens


def _sdk(url: str, token: str, calls: list[tuple[str, dict]]) -> list[str]:
    async def run() -> list[str]:
        async with sdk_client(url, token=token) as client:
            return [text_of(await client.call_tool(name, args)) for name, args in calls]

    return anyio.run(run)


def test_alice_and_bob_each_see_only_their_own_notes_through_the_sdk_client(gw, notes):
    alice, bob = notes
    url = gw.mcp("notes")
    assert _sdk(url, alice.secret, [("add_note", {"text": "alice: buy milk"})]) == ["alice has 1 note(s)"]
    assert _sdk(url, bob.secret, [("add_note", {"text": "bob: call mum"})]) == ["bob has 1 note(s)"]
    # A new session, a new client: the notes follow the user, not the session.
    [alice_notes] = _sdk(url, alice.secret, [("list_notes", {})])
    [bob_notes] = _sdk(url, bob.secret, [("list_notes", {})])
    assert "alice: buy milk" in alice_notes and "bob" not in alice_notes
    assert "bob: call mum" in bob_notes and "alice" not in bob_notes


def test_the_same_isolation_through_supergateway(gw, notes, supergateway_bin, tmp_path):
    alice, bob = notes
    results = {}
    for who, token in (("alice", alice), ("bob", bob)):
        client = StdioClient(
            [supergateway_bin, "--streamableHttp", gw.mcp("notes"), "--oauth2Bearer", token.secret,
             "--logLevel", "none"],
            stderr_path=tmp_path / f"supergateway-{who}.log",
        )
        try:
            client.initialize()
            add = client.request("tools/call", {"name": "add_note", "arguments": {"text": f"{who}'s secret"}})
            assert "error" not in add and not add["result"].get("isError"), add
            listed = client.request("tools/call", {"name": "list_notes", "arguments": {}})
            results[who] = str(listed["result"])
        finally:
            client.close()
    assert "alice's secret" in results["alice"] and "bob's secret" not in results["alice"]
    assert "bob's secret" in results["bob"] and "alice's secret" not in results["bob"]


def test_a_direct_call_that_bypasses_gatehouse_is_refused(gw, notes, notes_url):
    alice, _ = notes
    # No assertion at all.
    assert httpx.post(notes_url, json=INIT, headers=MCP_HEADERS, timeout=15).status_code == 401
    # A Gatehouse client token is not an identity assertion.
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {alice.secret}"}
    assert httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code == 401
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {alice.secret.removeprefix('gth_')}"}
    assert httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code == 401
    # A forged one: right claims and typ, someone else's key.
    from cryptography.hazmat.primitives.asymmetric import ed25519

    forged = jwt.encode(
        {"iss": settings.TOKEN_ISSUER, "aud": notes_url, "sub": "alice", "iat": 0, "exp": 2**31,
         "client_id": "x", "jti": "x"},
        ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA",
        headers={"kid": jwt.get_unverified_header(alice.secret.removeprefix("gth_"))["kid"],
                 "typ": "gatehouse-identity+jwt"},
    )
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {forged}"}
    assert httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code == 401
    # A genuine assertion made for another server (audience) is refused too.
    target = enabled_target("notes")
    assert target is not None
    other = type(target)(**{**target.__dict__, "public_url": "http://elsewhere.example/mcp", "id": -1})
    stolen = identity_assertion(token=authenticate_token(raw_token=alice.secret), server=other)
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {stolen}"}
    assert httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code == 401
    # ... while one for this server would pass: the refusals above are about the assertion.
    genuine = identity_assertion(token=authenticate_token(raw_token=alice.secret), server=target)
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {genuine}"}
    assert httpx.post(notes_url, json=INIT, headers=headers, timeout=15).status_code == 200


def test_raw_http_through_the_gateway_works_too(gw, notes):
    alice, _ = notes
    session_id = initialize(gw.mcp("notes"), alice.secret)
    reply = sse_result(call(gw.mcp("notes"), alice.secret, session_id, "list_notes"))
    assert "result" in reply, reply

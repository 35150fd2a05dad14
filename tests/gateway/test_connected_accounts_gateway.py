"""Connected accounts at the gateway, in process: each caller's own credential in the configured
header (a client's header of that name stripped; the static headers still sent), a caller with
none gets a JSON-RPC error with their connect page and nothing goes upstream, a disconnect ends it
on the next request, and steady state needs no database."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.conf import settings
from django.utils import timezone

from core import changes
from core.models import Change
from gateway.admission import caches
from gateway.admission.db_pool import close_pool_connections, run_db
from gateway.flows.streamable import streamable_http
from gateway.mcp.protocol import META_PROTOCOL_VERSION
from tests.factories import UserFactory
from tests.gateway.audit_wait import wait_for_event
from tests.support.recording_upstream import recording_upstream
from tests.support.serving import serving_thread
from tests.support.sessions import make_session
from upstreams import services
from upstreams.accounts import services as accounts
from upstreams.accounts.models import ConnectedAccount
from upstreams.user_credentials import UserCredentialSettings

CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}


class EchoUpstream:
    """An upstream on a thread that answers every JSON-RPC request with the headers it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                echo.seen.append(headers)
                answer = {"jsonrpc": "2.0", "id": body.get("id"), "result": {"headers": headers}}
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mcp"


@pytest.fixture
def echo() -> Iterator[EchoUpstream]:
    upstream = EchoUpstream()
    thread: threading.Thread = serving_thread(upstream.server)
    thread.start()
    yield upstream
    upstream.server.shutdown()
    close_pool_connections()  # else PostgreSQL refuses to drop the test database at the end


@pytest.fixture
def keyed(echo):
    return services.create_server(
        name="keyed", url=echo.url, actor="tests", headers={"X-Static": "static-value"},
        user_credential=UserCredentialSettings(spec="header:X-Api-Key"),
    )


def _post(token: str, *, extra: list[tuple[bytes, bytes]] = (), body: dict | None = CALL,
          version: str = "2025-06-18") -> dict:
    communicator = HttpCommunicator(
        streamable_http, "POST", "/mcp/keyed/", body=json.dumps(body).encode(),
        headers=[(b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream"),
                 (b"mcp-protocol-version", version.encode()), (b"authorization", f"Bearer {token}".encode()),
                 *extra],
    )
    communicator.scope["url_route"] = {"kwargs": {"server": "keyed"}}
    response = async_to_sync(communicator.get_response)(timeout=10)
    response["json"] = json.loads(response["body"])
    return response


@pytest.mark.django_db(transaction=True)
def test_each_caller_reaches_the_upstream_with_their_own_key(echo, keyed, user, make_token):
    bob = UserFactory(username="bob")
    accounts.connect_key(user=user, server=keyed, value="alice-key", actor="alice")
    accounts.connect_key(user=bob, server=keyed, value="bob-key", actor="bob")
    alice_token = make_token({"keyed": None})
    bob_token = make_token({"keyed": None}, owner=bob)

    seen_by_alice = _post(alice_token.secret, extra=[(b"x-api-key-spoof", b"x"), (b"X-Api-Key", b"forged")])
    seen_by_bob = _post(bob_token.secret)

    assert seen_by_alice["status"] == 200, seen_by_alice["json"]
    # X-Api-Key is also a Gatehouse credential header: the client's is stripped, the person's is sent.
    assert seen_by_alice["json"]["result"]["headers"]["x-api-key"] == "alice-key"
    assert seen_by_alice["json"]["result"]["headers"]["x-static"] == "static-value"
    assert seen_by_bob["json"]["result"]["headers"]["x-api-key"] == "bob-key"
    assert "authorization" not in seen_by_bob["json"]["result"]["headers"]


@pytest.mark.django_db(transaction=True)
def test_a_client_header_of_the_credential_name_never_crosses(echo, user, make_token):
    server = services.create_server(name="keyed", url=echo.url, actor="tests",
                                    user_credential=UserCredentialSettings(spec="header:X-Notes-Key"))
    accounts.connect_key(user=user, server=server, value="alice-key", actor="alice")
    token = make_token({"keyed": None})
    answer = _post(token.secret, extra=[(b"x-notes-key", b"someone-elses-key")])
    assert answer["json"]["result"]["headers"]["x-notes-key"] == "alice-key"
    assert [h["x-notes-key"] for h in echo.seen] == ["alice-key"]


@pytest.mark.django_db(transaction=True)
def test_a_caller_with_no_connection_gets_a_jsonrpc_error_with_their_connect_page(echo, keyed, make_token):
    token = make_token({"keyed": None})
    answer = _post(token.secret)
    assert answer["status"] == 200
    error = answer["json"]["error"]
    assert answer["json"]["id"] == 7
    assert error["data"] == {"error": "account_not_connected", "server": "keyed",
                             "connect_url": f"{settings.PUBLIC_URL}/console/me/"}
    assert f"{settings.PUBLIC_URL}/console/me/" in error["message"] and "keyed" in error["message"]
    assert echo.seen == []  # never an anonymous request upstream
    wait_for_event(event="auth.denied", detail__reason="account_not_connected")


@pytest.mark.django_db(transaction=True)
def test_a_client_of_the_2026_revision_gets_the_url_elicitation_form_of_the_error(echo, keyed, make_token):
    token = make_token({"keyed": None})
    call = {**CALL, "params": {**CALL["params"], "_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}}
    answer = _post(token.secret, body=call, version="2026-07-28")
    assert answer["status"] == 200
    error = answer["json"]["error"]
    connect = f"{settings.PUBLIC_URL}/console/me/"
    assert error["code"] == -32042  # URL elicitation required
    [elicitation] = error["data"]["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["url"] == connect
    assert elicitation["elicitationId"] and "keyed" in elicitation["message"]
    assert error["data"]["connect_url"] == connect and error["data"]["server"] == "keyed"
    assert echo.seen == []
    # The older revision keeps the plain form.
    assert _post(token.secret)["json"]["error"]["code"] == -32002


@pytest.mark.django_db(transaction=True)
def test_disconnecting_ends_it_on_the_next_request(echo, keyed, user, make_token):
    accounts.connect_key(user=user, server=keyed, value="alice-key", actor="alice")
    token = make_token({"keyed": None})
    assert _post(token.secret)["json"]["result"]["headers"]["x-api-key"] == "alice-key"
    accounts.disconnect(user=user, server=keyed, actor="alice")
    assert _post(token.secret)["json"]["error"]["data"]["error"] == "account_not_connected"
    assert len(echo.seen) == 1


@pytest.mark.django_db(transaction=True)
def test_a_new_key_takes_effect_on_the_next_request(echo, keyed, user, make_token):
    accounts.connect_key(user=user, server=keyed, value="old-key", actor="alice")
    token = make_token({"keyed": None})
    assert _post(token.secret)["json"]["result"]["headers"]["x-api-key"] == "old-key"
    accounts.connect_key(user=user, server=keyed, value="new-key", actor="alice")
    assert _post(token.secret)["json"]["result"]["headers"]["x-api-key"] == "new-key"


async def _response(token: str) -> dict:
    communicator = HttpCommunicator(
        streamable_http, "POST", "/mcp/keyed/", body=json.dumps(CALL).encode(),
        headers=[(b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream"),
                 (b"authorization", f"Bearer {token}".encode())],
    )
    communicator.scope["url_route"] = {"kwargs": {"server": "keyed"}}
    return json.loads((await communicator.get_response(timeout=10))["body"])


@pytest.mark.django_db(transaction=True)
def test_steady_state_reads_the_credential_from_the_cache_until_the_change_feed_says_otherwise(
    echo, keyed, user, make_token, monkeypatch,
):
    """No database round trip for the credential once cached; a change written by another
    process (a ``Change`` row, the row edited without signals) is honoured within a poll."""
    from gateway.admission import rules

    asked: list[int] = []
    real = rules.credential_header

    def counting(**kwargs):
        asked.append(kwargs["user_id"])
        return real(**kwargs)

    monkeypatch.setattr(rules, "credential_header", counting)
    accounts.connect_key(user=user, server=keyed, value="alice-key", actor="alice")
    token = make_token({"keyed": None})

    async def scenario() -> list[dict]:
        before = caches.epoch()
        caches.ensure_following(run_db, rules.flush_noted)  # the follower a gateway request starts
        try:
            await eventually_async(lambda: caches.live() and caches.epoch() > before)  # its first read
            # Its next reads deliver the rows written before it started (its look-back window) once.
            await asyncio.sleep(changes.POLL_SECONDS * 4)
            answers = [await _response(token.secret) for _ in range(3)]
            await run_db(lambda: ConnectedAccount.objects.filter(user=user).update(status="broken"))
            await run_db(lambda: Change.objects.create(kind=changes.ACCOUNT, key=f"{user.pk}:{keyed.pk}",
                                                       at=timezone.now()))
            await asyncio.sleep(changes.POLL_SECONDS * 6)
            answers.append(await _response(token.secret))
            return answers
        finally:
            caches._followers.pop(asyncio.get_running_loop()).cancel()

    answers = asyncio.run(scenario())
    assert [a["result"]["headers"]["x-api-key"] for a in answers[:3]] == ["alice-key"] * 3
    assert len(asked) == 2  # the first filled the cache, the next two asked nothing; the last missed
    assert answers[3]["error"]["data"]["error"] == "account_not_connected"


async def eventually_async(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_broken_connection_asks_the_person_to_connect_again(echo, keyed, user, make_token):
    accounts.connect_key(user=user, server=keyed, value="alice-key", actor="alice")
    ConnectedAccount.objects.filter(user=user).update(status="broken")
    token = make_token({"keyed": None})
    error = _post(token.secret)["json"]["error"]
    assert "again" in error["message"] and error["data"]["error"] == "account_not_connected"
    assert echo.seen == []
    wait_for_event(event="auth.denied", detail__reason="account_broken")


def test_the_upstream_delete_of_an_ended_session_carries_the_owners_credential(
    staff_client, user, make_token
):
    with recording_upstream() as recorder:
        server = services.create_server(name="keyed", url=recorder.url, actor="tests",
                                        user_credential=UserCredentialSettings(spec="header:X-Notes-Key"))
        accounts.connect_key(user=user, server=server, value="alice-key", actor="alice")
        session = make_session(token=make_token({"keyed": None}).token, server=server)

        staff_client.post(f"/console/sessions/{session.pk}/terminate/")

        assert [d.headers.get("x-notes-key") for d in recorder.deletes] == ["alice-key"]

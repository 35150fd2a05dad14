"""Connected accounts, live: a real OAuth provider (django-oauth-toolkit, its own process) guards a
real upstream MCP server (official SDK, its own process) that introspects each bearer token
(RFC 7662) and answers with the person it belongs to. People connect through My access (the
authorization code flow with PKCE against the provider), then reach the upstream through the live
gateway as themselves: their own token, refreshed before it expires, a refused refresh answered
with their connect page."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from core import encryption
from tests.factories import UserFactory
from tests.gateway.drivers import INIT, MCP_HEADERS, call, initialize, sse_result
from tests.support.polling import eventually
from tests.support.processes import free_port, running
from upstreams import services
from upstreams.accounts import services as accounts
from upstreams.accounts.models import ConnectedAccount
from upstreams.user_credentials import OAuthProvider, UserCredentialSettings

pytestmark = pytest.mark.integration

CLIENT_ID, CLIENT_SECRET = "gatehouse-accounts", "gatehouse-accounts-secret-1"
RS_ID, RS_SECRET = "mail-resource-server", "mail-rs-secret-2"
CALLBACK = f"{settings.PUBLIC_URL}/console/me/connect/mail/callback"


@pytest.fixture(scope="module")
def provider(oidc_provider):
    oidc_provider.register_client(CLIENT_ID, CLIENT_SECRET, [CALLBACK])
    oidc_provider.register_client(RS_ID, RS_SECRET)
    return oidc_provider


@pytest.fixture(scope="module")
def guarded_upstream(provider, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "tests.support.introspecting_upstream", "--port", str(port),
            "--introspect-url", f"{provider.issuer}/introspect/", "--client-id", RS_ID,
            "--client-secret", RS_SECRET]
    log_path = tmp_path_factory.mktemp("introspecting-upstream") / "upstream.log"
    with running(args, env=dict(os.environ, PYTHONUNBUFFERED="1"), ready_url=f"http://127.0.0.1:{port}/health",
                 log_path=log_path):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def mail(gw, provider, guarded_upstream):
    oauth = OAuthProvider(authorize_url=f"{provider.issuer}/authorize/",
                          token_url=f"{provider.issuer}/token/", client_id=CLIENT_ID,
                          client_secret=CLIENT_SECRET, scopes="profile")
    return services.create_server(name="mail", url=guarded_upstream, actor="tests",
                                  user_credential=UserCredentialSettings(spec="oauth", oauth=oauth))


def _connect(provider, person: User) -> Client:
    """My access → the provider (signed in there as the same person) → the callback: connected."""
    console = Client()
    console.force_login(person)
    started = console.post("/console/me/connect/mail/")
    assert started.status_code == 302
    assert "code_challenge_method=S256" in started["Location"] and "state=" in started["Location"]
    at_provider = provider.login_session(user=person.username)
    try:
        authorized = at_provider.get(started["Location"])
    finally:
        at_provider.close()
    assert authorized.status_code == 302, authorized.text[:300]
    back = urlsplit(authorized.headers["location"])
    assert f"{settings.PUBLIC_URL}{back.path}" == CALLBACK
    done = console.get(f"{back.path}?{back.query}")
    assert done.status_code == 302
    assert ConnectedAccount.objects.get(user=person, server__name="mail").status == "connected"
    return console


def _whoami(gw, token: str) -> dict:
    session_id = initialize(gw.mcp("mail"), token)
    return sse_result(call(gw.mcp("mail"), token, session_id, "whoami"))


def _initialize(gw, token: str, server: str = "mail") -> httpx.Response:
    return httpx.post(gw.mcp(server), json=INIT, headers={**MCP_HEADERS, "X-API-Key": token}, timeout=15)


def _refused(answer: httpx.Response) -> bool:
    """A JSON-RPC error from the gateway (an answer relayed from the upstream is an event stream)."""
    return answer.headers["content-type"].startswith("application/json") and "error" in answer.json()


def _expire(provider, person: User) -> None:
    """Time passes: the provider's access token and Gatehouse's note of it both expire."""
    provider._manage("oidc_setup", "expire", person.username)
    ConnectedAccount.objects.filter(user=person).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_two_people_through_the_gateway_each_reach_their_own_account(gw, provider, mail, user):
    bob = UserFactory(username="bob")
    _connect(provider, user)
    _connect(provider, bob)
    alice_token = gw.make_token({"mail": None}, owner=user)
    bob_token = gw.make_token({"mail": None}, owner=bob)

    assert _whoami(gw, alice_token.secret)["result"]["structuredContent"] == {"user": "alice"}
    assert _whoami(gw, bob_token.secret)["result"]["structuredContent"] == {"user": "bob"}
    connected = AuditEvent.objects.filter(event=events.ACCOUNT_CONNECTED, server="mail")
    assert sorted(connected.values_list("owner", flat=True)) == ["alice", "bob"]
    stored = [encryption.decrypt(a.secret_encrypted) for a in ConnectedAccount.objects.all()]
    rows = str(list(AuditEvent.objects.values_list("detail", flat=True))) + gw.server_log.log()
    assert not any(secret in rows for secret in stored)

    accounts.disconnect(user=bob, server=mail, actor="bob")  # another process: within a poll
    eventually(lambda: _refused(_initialize(gw, bob_token.secret)), what="bob's disconnect to take effect")


def test_an_expired_access_token_is_refreshed_without_the_client_noticing(gw, provider, mail, user):
    _connect(provider, user)
    before = encryption.decrypt(ConnectedAccount.objects.get(user=user).secret_encrypted)
    _expire(provider, user)
    token = gw.make_token({"mail": None}, owner=user)

    assert _whoami(gw, token.secret)["result"]["structuredContent"] == {"user": "alice"}

    account = ConnectedAccount.objects.get(user=user)
    assert encryption.decrypt(account.secret_encrypted) != before
    assert account.expires_at > timezone.now() and account.refreshed_at is not None
    refreshed = AuditEvent.objects.filter(event=events.ACCOUNT_REFRESHED, owner="alice", server="mail")
    assert refreshed.count() == 1


def test_a_revoked_refresh_token_asks_the_person_to_reconnect(gw, provider, mail, user):
    console = _connect(provider, user)
    refresh = encryption.decrypt(ConnectedAccount.objects.get(user=user).refresh_encrypted)
    revoked = httpx.post(f"{provider.issuer}/revoke_token/",
                         data={"token": refresh, "token_type_hint": "refresh_token"},
                         auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
    assert revoked.status_code == 200
    _expire(provider, user)
    token = gw.make_token({"mail": None}, owner=user)

    answer = _initialize(gw, token.secret)

    assert answer.status_code == 200
    error = answer.json()["error"]
    assert answer.json()["id"] == 1
    assert error["data"] == {"error": "account_not_connected", "server": "mail",
                             "connect_url": f"{settings.PUBLIC_URL}/console/me/"}
    assert "again" in error["message"]
    assert ConnectedAccount.objects.get(user=user).status == "broken"
    failed = AuditEvent.objects.get(event=events.ACCOUNT_REFRESH_FAILED, owner="alice")
    assert failed.outcome == "error" and refresh not in str(failed.detail)
    assert "connect again" in console.get("/console/me/").content.decode()


def test_a_person_with_no_connection_gets_the_error_with_the_link(gw, mail, user):
    token = gw.make_token({"mail": None}, owner=user)
    answer = _initialize(gw, token.secret)
    assert answer.json()["error"]["data"]["connect_url"] == f"{settings.PUBLIC_URL}/console/me/"
    assert "mail" in answer.json()["error"]["message"]


def test_header_keys_likewise(gw, user, monkeypatch):
    services.create_server(name="keys", url=gw.upstream, actor="tests",
                           user_credential=UserCredentialSettings(spec="header:X-Api-Key"))
    bob = UserFactory(username="bob")
    monkeypatch.setattr("sys.stdin", io.StringIO("alice-personal-key\n"))
    call_command("set_user_credential", "keys", "alice", stdout=io.StringIO())
    alice_token = gw.make_token({"keys": None}, owner=user)
    bob_token = gw.make_token({"keys": None}, owner=bob)

    session_id = initialize(gw.mcp("keys"), alice_token.secret)  # the gateway token in X-API-Key too
    seen = dict(sse_result(call(gw.mcp("keys"), alice_token.secret, session_id, "request_info"))
                ["result"]["structuredContent"]["headers"])
    assert seen["x-api-key"] == "alice-personal-key"
    missing = _initialize(gw, bob_token.secret, "keys")
    assert missing.json()["error"]["data"]["error"] == "account_not_connected"

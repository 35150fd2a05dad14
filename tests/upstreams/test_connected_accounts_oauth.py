"""The oauth kind, in process, with the provider patched at its one seam (``upstreams.accounts.provider``):
the connect redirect (PKCE S256, a single-use ``state``), the callback, refresh before expiry (once,
however many callers), a refused refresh marks the connection broken, an unreachable provider."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from upstreams import services
from upstreams.accounts import provider
from upstreams.accounts import services as accounts
from upstreams.accounts.models import ConnectedAccount
from upstreams.accounts.provider import ProviderTokens
from upstreams.exceptions import ProviderRefused, ProviderUnreachable
from upstreams.user_credentials import OAuthProvider, UserCredentialSettings

pytestmark = pytest.mark.django_db

FIRST = ProviderTokens(access_token="access-one", refresh_token="refresh-one", expires_in=3600)


@pytest.fixture
def mail(db):
    oauth = OAuthProvider(authorize_url="https://id.example.test/authorize",
                          token_url="https://id.example.test/token", client_id="gatehouse",
                          client_secret="s3cret", scopes="mail.read")
    return services.create_server(name="mail", url="http://127.0.0.1:9/mcp", actor="tests",
                                  user_credential=UserCredentialSettings(spec="oauth", oauth=oauth))


def _expiring(user, mail) -> ConnectedAccount:
    accounts.connect_tokens(user=user, server=mail, tokens=FIRST, actor="alice")
    ConnectedAccount.objects.filter(user=user).update(expires_at=timezone.now() + timedelta(seconds=10),
                                                      connected_at=timezone.now() - timedelta(hours=1))
    return ConnectedAccount.objects.get(user=user)


def test_connect_sends_the_person_to_the_provider_with_pkce_and_a_state(plain_client, mail):
    answer = plain_client.post("/console/me/connect/mail/")
    assert answer.status_code == 302
    sent = urlsplit(answer["Location"])
    query = parse_qs(sent.query)
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == "https://id.example.test/authorize"
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/console/me/connect/mail/callback"]
    assert query["client_id"] == ["gatehouse"] and query["scope"] == ["mail.read"]
    assert "s3cret" not in answer["Location"]


def test_the_callback_stores_the_tokens_once_per_state(plain_client, mail, user, monkeypatch):
    exchanged = []

    def exchange(oauth, *, code, redirect_uri, verifier):
        exchanged.append((code, verifier))
        return FIRST

    monkeypatch.setattr(provider, "exchange_code", exchange)
    state = parse_qs(urlsplit(plain_client.post("/console/me/connect/mail/")["Location"]).query)["state"][0]

    plain_client.get(f"/console/me/connect/mail/callback?code=c0de&state={state}")
    again = plain_client.get(f"/console/me/connect/mail/callback?code=c0de&state={state}", follow=True)

    assert len(exchanged) == 1 and exchanged[0][0] == "c0de" and len(exchanged[0][1]) > 43
    header = accounts.credential_header(user_id=user.pk, server_id=mail.pk)
    assert (header.name, header.value) == ("Authorization", "Bearer access-one")
    assert "unknown or was already used" in again.content.decode()


def test_a_provider_error_at_the_callback_stores_nothing(plain_client, mail):
    state = parse_qs(urlsplit(plain_client.post("/console/me/connect/mail/")["Location"]).query)["state"][0]
    page = plain_client.get(f"/console/me/connect/mail/callback?error=access_denied&state={state}",
                            follow=True)
    assert "access_denied" in page.content.decode()
    assert not ConnectedAccount.objects.exists()


def test_a_token_due_to_expire_is_refreshed_first_and_audited(mail, user, monkeypatch):
    _expiring(user, mail)
    asked = []
    second = ProviderTokens(access_token="access-two", refresh_token="refresh-two", expires_in=3600)
    monkeypatch.setattr(provider, "refresh",
                        lambda oauth, *, refresh_token: asked.append(refresh_token) or second)

    header = accounts.credential_header(user_id=user.pk, server_id=mail.pk)

    assert header.value == "Bearer access-two" and asked == ["refresh-one"]
    assert header.until > timezone.now() + timedelta(minutes=55)
    assert AuditEvent.objects.filter(event=events.ACCOUNT_REFRESHED, owner="alice").exists()
    assert accounts.credential_header(user_id=user.pk, server_id=mail.pk).value == "Bearer access-two"
    assert asked == ["refresh-one"]  # fresh now: no second refresh


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("across", [
    pytest.param(False, id="threads of one process"),
    # Each caller its own lock, as on separate instances: only the row lock keeps them apart.
    pytest.param(True, id="instances", marks=pytest.mark.integration),
])
def test_concurrent_callers_refresh_once(mail, user, monkeypatch, across):
    if across:
        if connection.vendor != "postgresql":
            pytest.skip("row locks need PostgreSQL (SQLite serves one instance)")
        monkeypatch.setattr(accounts, "_lock_for", lambda key: threading.Lock())
    _expiring(user, mail)
    started, release, asked = threading.Event(), threading.Event(), []

    def slow_refresh(oauth, *, refresh_token):
        asked.append(refresh_token)
        started.set()
        release.wait(5)
        return ProviderTokens(access_token="access-two", refresh_token="refresh-two", expires_in=3600)

    monkeypatch.setattr(provider, "refresh", slow_refresh)
    seen: list[str] = []

    def caller() -> None:
        try:
            seen.append(accounts.credential_header(user_id=user.pk, server_id=mail.pk).value)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(3)]
    threads[0].start()
    assert started.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert asked == ["refresh-one"] and seen == ["Bearer access-two"] * 3


def test_a_refused_refresh_marks_the_connection_broken_and_tells_the_person(
    plain_client, mail, user, monkeypatch
):
    account = _expiring(user, mail)
    ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    def refuse(oauth, *, refresh_token):
        raise ProviderRefused("The provider refused (invalid_grant).")

    monkeypatch.setattr(provider, "refresh", refuse)

    assert accounts.credential_header(user_id=user.pk, server_id=mail.pk) is None
    assert ConnectedAccount.objects.get(pk=account.pk).status == "broken"
    failed = AuditEvent.objects.get(event=events.ACCOUNT_REFRESH_FAILED)
    assert failed.detail["reason"] == "The provider refused (invalid_grant)."
    assert "connect again" in plain_client.get("/console/me/").content.decode()


def test_an_unreachable_provider_keeps_a_token_that_still_works_and_otherwise_says_so(
    mail, user, monkeypatch
):
    account = _expiring(user, mail)

    def unreachable(oauth, *, refresh_token):
        raise ProviderUnreachable("The provider could not be reached (ConnectError).")

    monkeypatch.setattr(provider, "refresh", unreachable)
    assert accounts.credential_header(user_id=user.pk, server_id=mail.pk).value == "Bearer access-one"
    ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ProviderUnreachable):
        accounts.credential_header(user_id=user.pk, server_id=mail.pk)
    assert ConnectedAccount.objects.get(pk=account.pk).status == "connected"  # not the person's fault


def test_a_short_lived_token_is_refreshed_half_way_not_on_every_request(mail, user, monkeypatch):
    short = ProviderTokens(access_token="access-short", refresh_token="refresh-short", expires_in=30)
    account = accounts.connect_tokens(user=user, server=mail, tokens=short, actor="alice")
    assert not account.needs_refresh(timezone.now())
    assert account.needs_refresh(timezone.now() + timedelta(seconds=16))
    assert accounts.credential_header(user_id=user.pk, server_id=mail.pk).value == "Bearer access-short"

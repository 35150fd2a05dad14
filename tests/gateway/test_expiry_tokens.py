"""Token expiry sweeps: expired tokens are marked and their sessions ended; owners are warned once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding
from gateway.services import expire_sessions
from tests.factories import UserFactory
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tokens.expiry import email_expiry_warning, expire_tokens, warn_expiring_tokens
from tokens.models import Token
from tokens.services import revoke_token
from upstreams.models import UpstreamServer


@pytest.fixture
def upstream():
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def server(db, upstream) -> UpstreamServer:
    return UpstreamServer.objects.create(name="demo", url=upstream.url)


@pytest.fixture(autouse=True)
def warn_window(settings):
    settings.TOKEN_WARN_BEFORE_SECONDS = 3 * 86400


def _later(**delta: float):
    return timezone.now() + timedelta(**delta)


def test_token_past_expiry_is_marked_expired_and_audited(make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(hours=1)).token

    result = expire_tokens(now=_later(hours=2))

    token.refresh_from_db()
    assert token.status == Token.Status.EXPIRED
    assert result.expired_jtis == [token.jti]
    event = AuditEvent.objects.get(event=events.TOKEN_EXPIRED)
    assert event.token_jti == token.jti
    assert event.detail["display_prefix"] == token.display_prefix


def test_token_not_yet_expired_stays_active(make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(hours=1)).token

    assert expire_tokens(now=_later(minutes=59)).expired_jtis == []
    token.refresh_from_db()
    assert token.status == Token.Status.ACTIVE


def test_sessions_of_an_expired_token_end_and_upstream_hears_delete(make_token, server, upstream):
    token = make_token({"demo": None}, ttl=timedelta(hours=1)).token
    other = make_token({"demo": None}, ttl=timedelta(days=1), name="other").token
    session = make_session(token=token, server=server)
    untouched = make_session(token=other, server=server)

    expire_tokens(now=_later(hours=2))
    # The token sweep only relabels the token; the one session sweep ends its sessions.
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.ACTIVE
    sweep = expire_sessions()

    session.refresh_from_db()
    untouched.refresh_from_db()
    assert session.status == SessionBinding.Status.EXPIRED
    assert session.end_reason == "token expired"
    assert untouched.status == SessionBinding.Status.ACTIVE
    assert sweep.count == 1
    assert upstream.deleted_session_ids() == [session.upstream_session_id]


def test_expiring_twice_changes_nothing(make_token, server):
    make_token({"demo": None}, ttl=timedelta(hours=1))

    expire_tokens(now=_later(hours=2))

    assert expire_tokens(now=_later(hours=3)).expired_jtis == []
    assert AuditEvent.objects.filter(event=events.TOKEN_EXPIRED).count() == 1


def test_revoked_token_is_not_relabelled_expired(make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(hours=1)).token
    revoke_token(token=token, actor="tests")

    expire_tokens(now=_later(hours=2))

    token.refresh_from_db()
    assert token.status == Token.Status.REVOKED


def test_owner_is_warned_once_about_a_token_expiring_soon(make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(days=7)).token

    warnings = warn_expiring_tokens(now=_later(days=5))

    assert [w.jti for w in warnings] == [token.jti]
    event = AuditEvent.objects.get(event=events.TOKEN_EXPIRING)
    assert event.token_jti == token.jti
    assert event.owner == token.owner.username
    assert warn_expiring_tokens(now=_later(days=5, hours=1)) == []
    assert AuditEvent.objects.filter(event=events.TOKEN_EXPIRING).count() == 1


def test_token_far_from_expiry_is_not_warned(make_token, server):
    make_token({"demo": None}, ttl=timedelta(days=7))

    assert warn_expiring_tokens(now=_later(days=3)) == []


def test_short_lived_token_is_not_warned_about(make_token, server):
    make_token({"demo": None}, ttl=timedelta(hours=1))

    assert warn_expiring_tokens(now=_later(minutes=30)) == []


def test_revoked_token_is_not_warned_about(make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(days=7)).token
    revoke_token(token=token, actor="tests")

    assert warn_expiring_tokens(now=_later(days=5)) == []


def test_warning_email_goes_to_the_owner_without_the_token(make_token, server, settings, mailoutbox):
    settings.EMAIL_URL = "smtp://mail.example.test:25"
    owner = UserFactory(username="carol", email="carol@example.test")
    issued = make_token({"demo": None}, ttl=timedelta(days=7), owner=owner, name="laptop")

    assert email_expiry_warning(token_id=issued.token.pk) is True

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["carol@example.test"]
    assert "laptop" in message.subject
    assert issued.token.display_prefix in message.body
    assert issued.secret not in message.body
    assert issued.secret[4:] not in message.body


def test_no_email_when_email_is_not_configured(make_token, server, settings, mailoutbox):
    settings.EMAIL_URL = ""
    token = make_token({"demo": None}, ttl=timedelta(days=7)).token

    assert email_expiry_warning(token_id=token.pk) is False
    assert mailoutbox == []


def test_no_email_for_an_owner_without_address(make_token, server, settings, mailoutbox):
    settings.EMAIL_URL = "smtp://mail.example.test:25"
    owner = UserFactory(username="dave", email="")
    token = make_token({"demo": None}, ttl=timedelta(days=7), owner=owner).token

    assert email_expiry_warning(token_id=token.pk) is False
    assert mailoutbox == []

"""The whole life of a token: issue → verify → rotate with grace → old refused after grace → revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory
from tokens.exceptions import InvalidTokenRequest, InvalidTransition, TokenRevoked
from tokens.models import Token
from tokens.scope import TokenScope
from tokens.services import authenticate_token, issue_token, revoke_token, rotate_token


def _let_grace_pass(token: Token) -> None:
    """Time passes: move the end of the grace period into the past."""
    Token.objects.filter(pk=token.pk).update(grace_until=timezone.now() - timedelta(seconds=1))


def test_token_lifecycle_issue_verify_rotate_grace_revoke(make_token):
    issued = make_token({"demo": ["echo"]}, ttl=timedelta(days=7))
    assert authenticate_token(raw_token=issued.secret).jti == issued.token.jti

    successor = rotate_token(token=issued.token, actor="tests", grace=timedelta(minutes=10))
    # During the grace period both work, with the same scope.
    assert authenticate_token(raw_token=issued.secret).jti == issued.token.jti
    fresh = authenticate_token(raw_token=successor.secret)
    assert fresh.scope.to_mapping() == {"demo": ["echo"]}
    assert fresh.jti != issued.token.jti

    _let_grace_pass(issued.token)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)
    assert authenticate_token(raw_token=successor.secret).jti == successor.token.jti

    revoke_token(token=successor.token, actor="tests", reason="laptop lost")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=successor.secret)


def test_rotation_without_grace_refuses_the_old_token_at_once(make_token):
    issued = make_token()
    successor = rotate_token(token=issued.token, actor="tests")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)
    assert authenticate_token(raw_token=successor.secret)


def test_rotation_records_grace_end_and_links_successor(make_token):
    issued = make_token()
    before = timezone.now()
    successor = rotate_token(token=issued.token, actor="tests", grace=timedelta(minutes=10))
    old = Token.objects.get(pk=issued.token.pk)
    assert old.status == Token.Status.ROTATED
    assert old.successor_id == successor.token.pk
    assert before + timedelta(minutes=10) <= old.grace_until <= timezone.now() + timedelta(minutes=10)
    assert old.in_grace


def test_successor_gets_a_fresh_lifetime_of_the_same_length(make_token):
    issued = make_token(ttl=timedelta(hours=2))
    successor = rotate_token(token=issued.token, actor="tests")
    new = successor.token
    assert new.expires_at - new.created_at == timedelta(hours=2)
    assert new.owner_id == issued.token.owner_id and new.name == issued.token.name


def test_only_an_active_token_can_be_rotated(make_token):
    issued = make_token()
    rotate_token(token=issued.token, actor="tests")
    with pytest.raises(InvalidTransition):
        rotate_token(token=issued.token, actor="tests")
    revoked = make_token(name="other")
    revoke_token(token=revoked.token, actor="tests")
    with pytest.raises(InvalidTransition):
        rotate_token(token=revoked.token, actor="tests")


def test_a_token_in_grace_can_still_be_revoked_at_once(make_token):
    issued = make_token()
    rotate_token(token=issued.token, actor="tests", grace=timedelta(hours=1))
    revoke_token(token=issued.token, actor="tests", reason="leaked")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)


def test_revoking_twice_is_refused(make_token):
    issued = make_token()
    revoke_token(token=issued.token, actor="tests")
    with pytest.raises(InvalidTransition):
        revoke_token(token=issued.token, actor="tests")


def test_every_change_is_audited_with_event_names_from_design(make_token):
    issued = make_token()
    successor = rotate_token(token=issued.token, actor="alice", grace=timedelta(minutes=1))
    revoke_token(token=successor.token, actor="bob", reason="done")
    rows = list(AuditEvent.objects.order_by("id").values_list("event", "actor", "token_jti"))
    assert (events.TOKEN_ISSUED, "tests", issued.token.jti) in rows
    assert (events.TOKEN_ROTATED, "alice", issued.token.jti) in rows
    assert (events.TOKEN_REVOKED, "bob", successor.token.jti) in rows


def test_no_audit_row_contains_a_token(make_token):
    issued = make_token()
    successor = rotate_token(token=issued.token, actor="tests")
    revoke_token(token=successor.token, actor="tests", reason=f"pasted {successor.secret} by mistake")
    dump = repr(list(AuditEvent.objects.values()))
    for secret in (issued.secret, successor.secret):
        assert secret not in dump
        assert secret.split(".")[2] not in dump  # not even the signature part


def test_the_database_never_holds_the_token(make_token):
    issued = make_token()
    row = repr(list(Token.objects.filter(pk=issued.token.pk).values()))
    assert issued.secret[4:] not in row
    assert issued.token.display_prefix == f"gth_{issued.token.jti[:8]}"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_sensible_name(user, name):
    UpstreamServerFactory(name="demo")
    with pytest.raises(InvalidTokenRequest):
        issue_token(
            name=name, owner=user, scope=TokenScope.from_mapping({"demo": None}), ttl=timedelta(hours=1),
            actor="tests",
        )
    assert not Token.objects.exists()


def test_ttl_above_the_maximum_is_refused(user, settings):
    UpstreamServerFactory(name="demo")
    with pytest.raises(InvalidTokenRequest, match="maximum"):
        issue_token(name="x", owner=user, scope=TokenScope.from_mapping({"demo": None}),
                    ttl=settings.TOKEN_MAX_TTL + timedelta(seconds=1), actor="tests")

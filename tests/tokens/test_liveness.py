"""Token liveness, the specification: whether a token still authenticates is one rule, and every
place that asks agrees with it.

* active: usable until ``expires_at`` (empty: never);
* rotated: usable until ``grace_until``, and never past ``expires_at``;
* revoked, expired: never.

The row predicate (``Token.is_usable``/``liveness``), the queries (``Token.objects.usable()`` and
``dead()``), the verifier (``authenticate_token``) and the console's status filters must give
the same answer for every state; the session sweep's side is in
``tests/gateway/test_expiry_sessions.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.token_states import TOKEN_STATES, TokenState, put_in_state
from tokens.exceptions import TokenExpired, TokenRevoked
from tokens.models import SigningKey, Token
from tokens.selectors import token_list
from tokens.services import authenticate_token, revoke_token, rotate_token
from tokens.signing_keys import get_active_signing_key, prune_signing_keys, rotate_signing_key

Liveness = Token.Liveness


def _in(queryset, token: Token) -> bool:
    return queryset.filter(pk=token.pk).exists()


@pytest.mark.parametrize("state", TOKEN_STATES, ids=str)
def test_each_state_is_judged_the_same_by_the_row_the_queries_and_the_verifier(
    state: TokenState, make_token
):
    issued = make_token({"demo": None}, ttl=timedelta(hours=1))
    token = put_in_state(issued.token, state)
    now = timezone.now()

    assert token.liveness(now) == state.liveness
    assert token.is_usable(now) is state.usable
    assert _in(Token.objects.usable(now), token) is state.usable
    assert _in(Token.objects.dead(now), token) is not state.usable
    # What the expiry sweep relabels: the dead rows among those still labelled active.
    expected_sweep = token.status == Token.Status.ACTIVE and not state.usable
    assert _in(Token.objects.expired_still_active(now), token) is expected_sweep
    if state.refusal is None:
        assert authenticate_token(raw_token=issued.secret).jti == token.jti
    else:
        with pytest.raises(state.refusal):
            authenticate_token(raw_token=issued.secret)


@pytest.mark.parametrize("state", TOKEN_STATES, ids=str)
def test_the_console_shows_each_state_as_its_filters_find_it(state: TokenState, make_token):
    token = put_in_state(make_token({"demo": None}, ttl=timedelta(hours=1)).token, state)
    now = timezone.now()

    assert token.status_at(now) == state.shown
    assert _in(token_list(status=state.shown, now=now), token)
    # The usable tokens are exactly those the "active" and "grace" filters list.
    listed_usable = _in(token_list(status="active", now=now), token) or _in(
        token_list(status="grace", now=now), token
    )
    assert listed_usable is state.usable


def test_a_revoked_token_reads_as_revoked_even_once_it_has_also_expired(make_token):
    token = put_in_state(make_token().token, next(s for s in TOKEN_STATES if s.name == "revoked"))

    assert token.liveness(token.revoked_at + timedelta(days=365)) == Liveness.REVOKED


def test_rotation_without_grace_is_dead_at_once(make_token):
    issued = make_token()
    rotate_token(token=issued.token, actor="tests", grace=timedelta(0))
    token = Token.objects.get(pk=issued.token.pk)

    assert token.liveness() == Liveness.ROTATED_OUT
    assert not _in(Token.objects.usable(), token)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)


def test_liveness_is_judged_at_the_instant_asked(make_token):
    token = make_token(ttl=timedelta(hours=1)).token
    just_before = token.expires_at - timedelta(microseconds=1)

    assert token.is_usable(just_before)
    assert _in(Token.objects.usable(just_before), token)
    # At expires_at itself the token is dead (expiry is exclusive), in Python and in SQL alike.
    assert not token.is_usable(token.expires_at)
    assert _in(Token.objects.dead(token.expires_at), token)
    assert not _in(Token.objects.usable(token.expires_at), token)


def test_a_retired_signing_key_outlives_its_last_token_by_the_jwt_leeway(make_token, settings):
    settings.TOKEN_LEEWAY_SECONDS = 30
    token = make_token().token
    old = get_active_signing_key()
    rotate_signing_key(actor="tests")
    now = timezone.now()
    Token.objects.filter(pk=token.pk).update(
        created_at=now - timedelta(hours=1), expires_at=now - timedelta(seconds=10)
    )

    # Dead for the verifier, but a JWT signed by the key may still pass the leeway'd exp check:
    # it must be refused as expired, not as signed by an unknown key.
    assert not Token.objects.get(pk=token.pk).is_usable()
    assert prune_signing_keys(actor="tests") == []
    Token.objects.filter(pk=token.pk).update(expires_at=now - timedelta(seconds=31))
    # (and retired long enough ago that no identity assertion it signed is still about)
    SigningKey.objects.filter(pk=old.pk).update(retired_at=now - timedelta(hours=1))
    assert prune_signing_keys(actor="tests") == [old.kid]
    assert not SigningKey.objects.filter(pk=old.pk).exists()


# --- the agreement, for any combination of status and times --------------------------------------

_MINUTES = st.sampled_from([-24 * 60, -90, -2, 2, 90, 24 * 60])
_ROW = st.fixed_dictionaries(
    {
        "status": st.sampled_from(Token.Status.values),
        "expires_in": st.none() | _MINUTES,
        "grace_left": _MINUTES,
    }
)


def _make_row(make_token, index: int, row: dict) -> tuple[str, Token]:
    """A real token whose row is then set to ``row`` (relative to now; the JWT stays valid)."""
    issued = make_token(name=f"row-{index}", ttl=timedelta(hours=1))
    token = issued.token
    if row["status"] == Token.Status.ROTATED:
        rotate_token(token=token, actor="tests", grace=timedelta(0))
    elif row["status"] == Token.Status.REVOKED:
        revoke_token(token=token, actor="tests")
    now = timezone.now()
    changes: dict = {"status": row["status"], "created_at": now - timedelta(days=3)}
    changes["expires_at"] = None if row["expires_in"] is None else now + timedelta(minutes=row["expires_in"])
    if row["status"] == Token.Status.ROTATED:
        changes["grace_until"] = now + timedelta(minutes=row["grace_left"])
    Token.objects.filter(pk=token.pk).update(**changes)
    return issued.secret, Token.objects.get(pk=token.pk)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    # Each example runs in its own savepoint, rolled back below, so the db fixture is reset.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(_ROW, min_size=1, max_size=4))
def test_row_queries_and_verifier_agree_for_any_status_and_times(rows, make_token):
    with transaction.atomic():
        made = [_make_row(make_token, i, row) for i, row in enumerate(rows)]
        now = timezone.now()
        usable = set(Token.objects.usable(now).values_list("pk", flat=True))
        dead = set(Token.objects.dead(now).values_list("pk", flat=True))
        to_relabel = set(Token.objects.expired_still_active(now).values_list("pk", flat=True))
        for secret, token in made:
            verdict = token.liveness(now)
            # Every row is exactly one of usable or dead, and the SQL says which as Python does.
            assert (token.pk in usable) is token.is_usable(now)
            assert (token.pk in dead) is not token.is_usable(now)
            assert (token.pk in to_relabel) is (token.status == Token.Status.ACTIVE and token.pk in dead)
            if verdict == Liveness.USABLE:
                assert authenticate_token(raw_token=secret).token_id == token.pk
            else:
                refusal = TokenExpired if verdict == Liveness.EXPIRED else TokenRevoked
                with pytest.raises(refusal):
                    authenticate_token(raw_token=secret)
        transaction.set_rollback(True)

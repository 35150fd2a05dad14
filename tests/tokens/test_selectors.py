"""Token reads: the list filters, status history, and resolving what a person types."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import UserFactory
from tokens.exceptions import AmbiguousTokenReference, TokenNotFound
from tokens.models import Token
from tokens.selectors import find_token, token_detail, token_list
from tokens.services import revoke_token, rotate_token


def _names(qs) -> set[str]:
    return {t.name for t in qs}


@pytest.fixture
def tokens(make_token):
    bob = UserFactory(username="bob")
    made = {
        "laptop": make_token({"demo": None}, name="laptop", ttl=timedelta(days=30)),
        "ci": make_token({"files": ["read"]}, name="ci", owner=bob, ttl=timedelta(hours=5)),
        "old": make_token({"demo": ["echo"]}, name="old", ttl=timedelta(days=30)),
        "gone": make_token({"demo": None}, name="gone", ttl=timedelta(days=30)),
    }
    rotate_token(token=made["old"].token, actor="tests", grace=timedelta(hours=1))
    revoke_token(token=made["gone"].token, actor="tests")
    return made


def test_search_matches_name_owner_and_prefix(tokens):
    assert _names(token_list(search="lapt")) == {"laptop"}
    assert _names(token_list(search="bob")) == {"ci"}
    prefix = tokens["ci"].token.display_prefix
    assert _names(token_list(search=prefix)) == {"ci"}
    assert _names(token_list(search=prefix + "…")) == {"ci"}


def test_filters_by_owner_and_server(tokens):
    assert _names(token_list(owner="bob")) == {"ci"}
    assert _names(token_list(server="files")) == {"ci"}
    assert "ci" not in _names(token_list(server="demo"))


def test_status_filters_use_what_the_user_sees(tokens):
    assert _names(token_list(status="active")) == {"laptop", "ci", "old"}  # "old"'s successor is active
    assert _names(token_list(status="grace")) == {"old"}
    assert _names(token_list(status="revoked")) == {"gone"}
    ci = tokens["ci"].token
    now = timezone.now()
    Token.objects.filter(pk=ci.pk).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(days=1)
    )
    assert "ci" in _names(token_list(status="expired"))
    assert "ci" not in _names(token_list(status="active"))


def test_expiring_soon_lists_only_active_tokens_inside_the_window(tokens):
    assert _names(token_list(expiring_within=timedelta(days=1))) == {"ci"}
    assert _names(token_list(expiring_within=timedelta(days=31))) == {"laptop", "ci", "old"}


def test_history_reads_the_lifecycle_from_the_audit_log(tokens):
    old = tokens["old"].token
    history = token_detail(token_id=old.pk).history
    assert [h.event for h in history] == ["token.issued", "token.rotated"]
    successor = Token.objects.get(pk=old.pk).successor
    successor_history = token_detail(token_id=successor.pk).history
    assert [h.event for h in successor_history] == ["token.issued"]
    assert old.display_prefix in successor_history[0].summary


def test_find_token_by_jti_prefix_and_whole_token(tokens):
    issued = tokens["laptop"]
    assert find_token(reference=issued.token.jti) == issued.token
    assert find_token(reference=issued.token.display_prefix) == issued.token
    assert find_token(reference=issued.secret) == issued.token


def test_find_token_refuses_ambiguity_and_unknowns(tokens):
    a, b = tokens["laptop"].token, tokens["ci"].token
    Token.objects.filter(pk=a.pk).update(jti="cafe0000" + "a" * 24)
    Token.objects.filter(pk=b.pk).update(jti="cafe0000" + "b" * 24)
    with pytest.raises(AmbiguousTokenReference):
        find_token(reference="gth_cafe0000")
    with pytest.raises(TokenNotFound):
        find_token(reference="gth_00000000")
    with pytest.raises(TokenNotFound):
        find_token(reference="'; drop table --")

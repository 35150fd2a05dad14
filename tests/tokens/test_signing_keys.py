"""Signing keys rotate without breaking issued tokens; JWKS publishes every key that still verifies."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from tokens.exceptions import InvalidTokenRequest
from tokens.models import SigningKey, Token
from tokens.services import authenticate_token, revoke_token
from tokens.signing_keys import get_active_signing_key, prune_signing_keys, rotate_signing_key


def _retired_long_ago(key: SigningKey) -> None:
    """As if ``key`` had been retired long enough ago that no identity assertion it signed lives on."""
    SigningKey.objects.filter(pk=key.pk).update(retired_at=timezone.now() - timedelta(hours=1))


def _kid(secret: str) -> str:
    return jwt.get_unverified_header(secret.removeprefix("gth_"))["kid"]


def test_rotating_the_signing_key_keeps_old_tokens_valid(make_token):
    old = make_token(name="before")
    old_kid = _kid(old.secret)
    new_key = rotate_signing_key(actor="tests")
    new = make_token(name="after")

    assert _kid(new.secret) == new_key.kid != old_kid
    assert authenticate_token(raw_token=old.secret).jti == old.token.jti
    assert authenticate_token(raw_token=new.secret).jti == new.token.jti


def test_jwks_lists_the_active_and_the_retired_key(client, make_token):
    make_token()
    retired = get_active_signing_key()
    active = rotate_signing_key(actor="tests")

    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [active.kid, retired.kid]
    for key in keys:
        assert key["use"] == "sig" and key["alg"] == "EdDSA" and key["kty"] == "OKP"
        assert "d" not in key  # never the private part


def test_jwks_keys_verify_issued_tokens(client, make_token):
    issued = make_token()
    keys = {k["kid"]: k for k in client.get("/.well-known/jwks.json").json()["keys"]}
    jwk = jwt.PyJWK(keys[_kid(issued.secret)])
    claims = jwt.decode(issued.secret.removeprefix("gth_"), jwk.key, algorithms=["EdDSA"],
                        options={"verify_aud": False})
    assert claims["jti"] == issued.token.jti


def test_es256_keys_sign_and_verify(client, make_token):
    rotate_signing_key(actor="tests", algorithm="ES256")
    issued = make_token()
    assert jwt.get_unverified_header(issued.secret.removeprefix("gth_"))["alg"] == "ES256"
    assert authenticate_token(raw_token=issued.secret).jti == issued.token.jti
    es_key = next(k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["alg"] == "ES256")
    assert es_key["kty"] == "EC" and es_key["crv"] == "P-256" and "d" not in es_key


def test_unknown_algorithm_is_refused(db):
    with pytest.raises(InvalidTokenRequest):
        rotate_signing_key(actor="tests", algorithm="HS256")


def test_a_retired_key_keeps_no_private_material(make_token):
    make_token()
    old = get_active_signing_key()
    rotate_signing_key(actor="tests")
    old.refresh_from_db()
    assert old.status == SigningKey.Status.RETIRED
    assert old.private_key_encrypted == ""
    assert old.retired_at is not None


def test_rotation_is_audited(db):
    get_active_signing_key()
    key = rotate_signing_key(actor="ops")
    row = AuditEvent.objects.get(event=events.SIGNING_KEY_ROTATED)
    assert row.actor == "ops" and row.detail["kid"] == key.kid


def test_prune_keeps_a_retired_key_while_one_of_its_tokens_is_usable(make_token):
    issued = make_token()
    old = get_active_signing_key()
    rotate_signing_key(actor="tests")
    assert prune_signing_keys(actor="tests") == []
    assert SigningKey.objects.filter(pk=old.pk).exists()
    assert authenticate_token(raw_token=issued.secret)


def test_prune_drops_a_retired_key_once_its_tokens_are_dead(client, make_token):
    revoked = make_token(name="revoked")
    expired = make_token(name="expired")
    old = get_active_signing_key()
    revoke_token(token=revoked.token, actor="tests")
    now = timezone.now()
    Token.objects.filter(pk=expired.token.pk).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(days=1)
    )
    active = rotate_signing_key(actor="tests")
    # Its identity assertions (5 minutes) outlive its tokens: not pruned while they may be about.
    assert prune_signing_keys(actor="tests") == []
    _retired_long_ago(old)

    assert prune_signing_keys(actor="tests") == [old.kid]
    assert not SigningKey.objects.filter(pk=old.pk).exists()
    assert Token.objects.filter(signing_key__isnull=True).count() == 2  # history kept
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [active.kid]
    assert AuditEvent.objects.filter(event=events.SIGNING_KEY_PRUNED).count() == 1


def test_prune_never_drops_the_active_key(make_token):
    make_token()
    revoke_token(token=Token.objects.get(), actor="tests")
    key = get_active_signing_key()
    assert prune_signing_keys(actor="tests") == []
    assert SigningKey.objects.filter(pk=key.pk).exists()

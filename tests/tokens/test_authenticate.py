"""``authenticate_token`` refuses every token that is not exactly what Gatehouse issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.conf import settings
from django.utils import timezone

from tokens import crypto
from tokens.exceptions import (
    AuthenticationFailed,
    TokenExpired,
    TokenMalformed,
    TokenRevoked,
    TokenSignatureInvalid,
    TokenUnknown,
)
from tokens.models import Token
from tokens.services import authenticate_token
from tokens.signing_keys import get_active_signing_key


@pytest.fixture
def issued(make_token):
    return make_token({"demo": ["echo"]})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(secret: str) -> list[str]:
    return secret.removeprefix("gth_").split(".")


def test_a_good_token_authenticates_with_its_scope_and_owner(issued, user):
    authed = authenticate_token(raw_token=issued.secret)
    assert authed.owner_username == user.username
    assert authed.scope.allows_tool("demo", "echo")
    assert authed.display_prefix == issued.token.display_prefix


def test_surrounding_whitespace_is_tolerated(issued):
    assert authenticate_token(raw_token=f"  {issued.secret}\n").jti == issued.token.jti


def test_tampered_payload_is_refused(issued):
    header, payload, signature = _segments(issued.secret)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = {"demo": None, "prod": None}
    forged = f"gth_{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=forged)


def test_tampered_signature_is_refused(issued):
    header, payload, signature = _segments(issued.secret)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=f"gth_{header}.{payload}.{flipped}")


def test_token_without_gth_prefix_is_refused(issued):
    with pytest.raises(TokenMalformed):
        authenticate_token(raw_token=issued.secret.removeprefix("gth_"))


@pytest.mark.parametrize("raw", ["", "gth_", "gth_abc", "gth_a.b.c", "gth_" + "x" * 9000])
def test_garbage_is_refused_as_malformed_or_invalid(raw, db):
    with pytest.raises(AuthenticationFailed):
        authenticate_token(raw_token=raw)


def test_expired_token_is_refused(forge, issued, user):
    past = int((timezone.now() - timedelta(hours=1)).timestamp())
    claims = {"exp": past, "iat": past - 60, "nbf": past - 60}
    token = forge(jti=issued.token.jti, sub=user.username, claims=claims)
    with pytest.raises(TokenExpired):
        authenticate_token(raw_token=token)


def test_row_past_its_expiry_is_refused_even_if_the_jwt_says_otherwise(issued):
    now = timezone.now()
    Token.objects.filter(pk=issued.token.pk).update(
        created_at=now - timedelta(hours=2), expires_at=now - timedelta(seconds=1)
    )
    with pytest.raises(TokenExpired):
        authenticate_token(raw_token=issued.secret)


def test_not_yet_valid_token_is_refused(forge, issued, user):
    future = int((timezone.now() + timedelta(hours=1)).timestamp())
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=forge(jti=issued.token.jti, sub=user.username, claims={"nbf": future}))


def test_wrong_audience_is_refused_naming_the_audience_this_gateway_accepts(forge, issued, user):
    token = forge(jti=issued.token.jti, sub=user.username, claims={"aud": "https://elsewhere.example/mcp"})
    with pytest.raises(TokenSignatureInvalid) as refused:
        authenticate_token(raw_token=token)
    assert settings.TOKEN_AUDIENCE in refused.value.detail and "audience" in refused.value.detail


def test_wrong_issuer_is_refused_naming_the_issuer_this_gateway_accepts(forge, issued, user):
    token = forge(jti=issued.token.jti, sub=user.username, claims={"iss": "https://evil.example"})
    with pytest.raises(TokenSignatureInvalid) as refused:
        authenticate_token(raw_token=token)
    assert settings.TOKEN_ISSUER in refused.value.detail and "issuer" in refused.value.detail


def test_a_token_minted_under_another_public_url_is_refused_with_its_reason(issued, settings):
    settings.TOKEN_AUDIENCE = "http://127.0.0.1:8200/mcp"
    with pytest.raises(TokenSignatureInvalid) as refused:
        authenticate_token(raw_token=issued.secret)
    assert "another audience" in refused.value.detail and "8200" in refused.value.detail


def test_missing_required_claim_is_refused(issued):
    signing = get_active_signing_key()
    now = int(timezone.now().timestamp())
    claims = {"aud": settings.TOKEN_AUDIENCE, "jti": issued.token.jti, "iat": now}  # no iss, no sub
    encoded = jwt.encode(claims, crypto.load_private_key(signing.private_key_encrypted),
                         algorithm=signing.algorithm, headers={"kid": signing.kid})
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=f"gth_{encoded}")


def test_unknown_kid_is_refused(forge, issued, user):
    token = forge(jti=issued.token.jti, sub=user.username, headers={"kid": "no-such-key"})
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=token)


def test_token_signed_by_a_foreign_key_with_a_known_kid_is_refused(forge, issued, user):
    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=forge(jti=issued.token.jti, sub=user.username, key=stranger))


def test_alg_none_is_refused(issued, user):
    _, payload, _ = _segments(issued.secret)
    kid = get_active_signing_key().kid
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    for token in (f"gth_{none_header}.{payload}.", f"gth_{none_header}.{payload}"):
        with pytest.raises(AuthenticationFailed):
            authenticate_token(raw_token=token)


def test_hs256_signed_with_the_public_key_is_refused(issued, user):
    """The classic algorithm-confusion attack: HMAC keyed with the (public) verification key."""
    _, payload, _ = _segments(issued.secret)
    key = get_active_signing_key()
    confused_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = f"{confused_header}.{payload}".encode()
    signature = _b64(hmac.new(key.public_key_pem.encode(), signing_input, hashlib.sha256).digest())
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=f"gth_{confused_header}.{payload}.{signature}")


def test_algorithm_that_does_not_match_the_keys_is_refused(forge, issued, user):
    # A real ES256 signature with a kid that belongs to an EdDSA key.
    other = ec.generate_private_key(ec.SECP256R1())
    token = forge(jti=issued.token.jti, sub=user.username, key=other, algorithm="ES256")
    with pytest.raises(TokenSignatureInvalid):
        authenticate_token(raw_token=token)


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert.pem"},
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
    ],
    ids=["jku", "x5u", "jwk", "x5c", "crit"],
)
def test_key_selection_headers_are_refused(forge, issued, user, header):
    with pytest.raises(AuthenticationFailed):
        authenticate_token(raw_token=forge(jti=issued.token.jti, sub=user.username, headers=header))


def test_valid_signature_with_unknown_jti_is_refused(forge, user):
    with pytest.raises(TokenUnknown):
        authenticate_token(raw_token=forge(jti="f" * 32, sub=user.username))


def test_token_whose_sub_does_not_match_the_owner_is_refused(forge, issued):
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=forge(jti=issued.token.jti, sub="mallory"))


def test_token_of_a_deactivated_owner_is_refused(issued, user):
    user.is_active = False
    user.save()
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)

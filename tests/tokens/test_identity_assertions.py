"""Identity assertions (``tokens.assertions``): claims, typ, reuse, signing keys, and never a client token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.secrets_mask import mask_secrets
from tokens import assertions, crypto
from tokens.exceptions import IdentityAssertionPresented
from tokens.models import IDENTITY_ASSERTION_TYP, RETIRED_KEY_MIN_SECONDS, SigningKey
from tokens.services import authenticate_token, revoke_token
from tokens.signing_keys import get_active_signing_key, prune_signing_keys, rotate_signing_key
from upstreams.services import create_server
from upstreams.target import UpstreamTarget, target_of


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    assertions.clear_cache()
    yield
    assertions.clear_cache()


@pytest.fixture
def notes(db) -> UpstreamTarget:
    server = create_server(
        name="notes", url="https://bot:pw@notes.example/mcp?key=k1", actor="tests", forward_identity=True
    )
    return target_of(server)


def _verify(assertion: str, audience: str) -> dict:
    kid = jwt.get_unverified_header(assertion)["kid"]
    key = SigningKey.objects.get(kid=kid)
    return jwt.decode(
        assertion, crypto.load_public_key(key.public_key_pem), algorithms=[key.algorithm],
        audience=audience, issuer=settings.TOKEN_ISSUER,
    )


def test_claims_and_header(make_token, user, notes):
    issued = make_token({"notes": ["list_notes", "add_note"]})
    token = authenticate_token(raw_token=issued.secret)
    assertion = assertions.identity_assertion(token=token, server=notes, session_id="sess-1")

    header = jwt.get_unverified_header(assertion)
    assert header["typ"] == IDENTITY_ASSERTION_TYP == "gatehouse-identity+jwt"
    assert header["kid"] == get_active_signing_key().kid
    claims = _verify(assertion, "https://bot:***@notes.example/mcp?key=***")
    assert claims["iss"] == settings.TOKEN_ISSUER
    assert claims["aud"] == notes.public_url and "pw" not in claims["aud"]
    assert claims["sub"] == user.username
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert claims["client_id"] == issued.token.jti
    assert claims["scope"] == "add_note list_notes"
    assert claims["sid"] == "sess-1"
    assert len(claims["jti"]) == 32


def test_all_tools_is_a_star_and_no_session_means_no_sid(make_token, notes):
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    claims = _verify(assertions.identity_assertion(token=token, server=notes), notes.public_url)
    assert claims["scope"] == "*" and "sid" not in claims


def test_an_assertion_never_outlives_its_token(make_token, notes):
    token = authenticate_token(raw_token=make_token({"notes": None}, ttl=timedelta(seconds=90)).secret)
    claims = _verify(assertions.identity_assertion(token=token, server=notes), notes.public_url)
    assert claims["exp"] <= int(token.expires_at.timestamp())


def test_the_header_pair_is_bearer_in_authorization_and_bare_elsewhere(make_token, notes, db):
    other = target_of(create_server(
        name="other", url="http://other.example/mcp", actor="t", forward_identity=True,
        identity_header="X-Gatehouse-Identity",
    ))
    plain = target_of(create_server(name="plain", url="http://plain.example/mcp", actor="t"))
    token = authenticate_token(raw_token=make_token({"notes": None, "other": None, "plain": None}).secret)
    name, value = assertions.identity_header(token=token, server=notes)
    assert name == "Authorization" and value.startswith("Bearer eyJ")
    name, value = assertions.identity_header(token=token, server=other)
    assert name == "X-Gatehouse-Identity" and value.startswith("eyJ")
    assert assertions.identity_header(token=token, server=plain) is None


def test_reused_per_token_server_and_session_without_queries_or_signing(make_token, notes, db, monkeypatch):
    alice = authenticate_token(raw_token=make_token({"notes": None}, name="a").secret)
    bob = authenticate_token(raw_token=make_token({"notes": None}, name="b").secret)
    first = assertions.identity_assertion(token=alice, server=notes, session_id="s1")
    signed = []
    monkeypatch.setattr(assertions.jwt, "encode", lambda *a, **k: signed.append(1) or "")
    with CaptureQueriesContext(connection) as queries:
        again = assertions.identity_assertion(token=alice, server=notes, session_id="s1")
    assert again == first and not queries.captured_queries and not signed
    monkeypatch.undo()
    assert assertions.identity_assertion(token=alice, server=notes, session_id="s2") != first
    assert assertions.identity_assertion(token=bob, server=notes, session_id="s1") != first


def test_not_reused_within_its_last_minute(make_token, notes, monkeypatch):
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    first = assertions.identity_assertion(token=token, server=notes)
    now = assertions.time.time()
    monkeypatch.setattr(assertions.time, "time", lambda: now + 241)
    assert assertions.identity_assertion(token=token, server=notes) != first


def test_the_cache_is_bounded(make_token, notes, monkeypatch):
    monkeypatch.setattr(assertions, "CACHE_SIZE", 3)
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    for n in range(10):
        assertions.identity_assertion(token=token, server=notes, session_id=f"s{n}")
    assert len(assertions._assertions) == 3


def test_a_token_row_gives_the_same_identity_as_the_authenticated_token(make_token, notes):
    issued = make_token({"notes": ["add_note"]})
    claims = _verify(
        assertions.identity_assertion(token=issued.token, server=notes, session_id="s"), notes.public_url
    )
    assert claims["sub"] == issued.token.owner.username and claims["client_id"] == issued.token.jti
    assert claims["scope"] == "add_note"


def test_scope_claim_leaves_out_names_it_cannot_write():
    from tokens.scope import TokenScope

    scope = TokenScope.from_mapping({"a": ["x y", "z"], "b": None})
    assert assertions.scope_claim(scope, "a") == "z"
    assert assertions.scope_claim(scope, "b") == "*"
    assert assertions.scope_claim(scope, "c") == ""


def test_signed_by_the_active_key_and_verifiable_after_rotation_until_it_expires(make_token, notes):
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    before = assertions.identity_assertion(token=token, server=notes)
    old = get_active_signing_key()
    new = rotate_signing_key(actor="tests")

    # No token needs the old key any more, but the assertions it signed still verify: kept.
    assert prune_signing_keys(actor="tests") == []
    assert _verify(before, notes.public_url)["sub"] == token.owner_username

    # The cached one is still served (it verifies); a new one is signed by the new active key.
    assert assertions.identity_assertion(token=token, server=notes) == before
    after = assertions.identity_assertion(token=token, server=notes, session_id="new-session")
    assert jwt.get_unverified_header(after)["kid"] == new.kid != old.kid
    assert _verify(after, notes.public_url)["sub"] == token.owner_username


def test_a_retired_key_stays_published_longer_than_any_assertion_it_signed(make_token, client):
    issued = make_token()
    old = get_active_signing_key()
    rotate_signing_key(actor="tests")
    revoke_token(token=issued.token, actor="tests")
    retired = timezone.now() - timedelta(seconds=RETIRED_KEY_MIN_SECONDS)
    SigningKey.objects.filter(pk=old.pk).update(retired_at=retired)
    assert prune_signing_keys(actor="tests") == []  # the JWT leeway on top
    assert old.kid in [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
    SigningKey.objects.filter(pk=old.pk).update(
        retired_at=retired - timedelta(seconds=settings.TOKEN_LEEWAY_SECONDS + 1)
    )
    assert prune_signing_keys(actor="tests") == [old.kid]
    assert RETIRED_KEY_MIN_SECONDS >= 300


def test_an_assertion_is_never_a_client_token(make_token, notes):
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    assertion = assertions.identity_assertion(token=token, server=notes)
    for presented in (assertion, f"gth_{assertion}"):
        with pytest.raises(IdentityAssertionPresented) as info:
            authenticate_token(raw_token=presented)
        assert "identity assertion" in info.value.detail


def test_a_token_with_the_identity_typ_is_refused_even_with_the_gateways_audience(forge, make_token):
    issued = make_token()
    forged = forge(
        jti=issued.token.jti, sub=issued.token.owner.username, headers={"typ": IDENTITY_ASSERTION_TYP}
    )
    with pytest.raises(IdentityAssertionPresented):
        authenticate_token(raw_token=forged)


def test_access_tokens_carry_another_typ(make_token):
    assert jwt.get_unverified_header(make_token().secret.removeprefix("gth_"))["typ"] == "JWT"


def test_logs_mask_an_assertion(make_token, notes):
    token = authenticate_token(raw_token=make_token({"notes": None}).secret)
    assertion = assertions.identity_assertion(token=token, server=notes)
    lines = (f"sent {assertion}", f"Authorization: Bearer {assertion}", f"x-gatehouse-identity={assertion}")
    for line in lines:
        assert assertion not in mask_secrets(line)
        assert assertion.split(".")[2] not in mask_secrets(line)

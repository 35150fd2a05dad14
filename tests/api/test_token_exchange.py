"""``POST /api/v1/token-exchange/``: a trusted issuer's JWT in, a Gatehouse token out (RFC 8693).

Against a real OpenID Connect provider (django-oauth-toolkit in its own process): its discovery
document, its key set and the id_tokens it issues through its authorization-code flow. Hostile
tokens are signed with its key (or a stranger's) the way an attacker or a broken provider could.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core.management import call_command

from audit.models import AuditEvent
from tests.support.issuers import (
    CI_CLIENT,
    CI_SUBJECT,
    OTHER_CLIENT,
    claims_for,
    hs256_with_public_key,
    sign,
    stranger_key_pem,
    unsigned,
)
from tokens.exceptions import TokenRevoked
from tokens.issuers.exchange import GRANT_TYPE, ISSUED_TOKEN_TYPE, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT
from tokens.services import authenticate_token

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
URL = "/api/v1/token-exchange/"


def exchange(client, subject_token: str, **extra: str):
    form = {"grant_type": GRANT_TYPE, "subject_token": subject_token, "subject_token_type": TOKEN_TYPE_JWT}
    return client.post(URL, urlencode({**form, **extra}), content_type="application/x-www-form-urlencoded")


def ci_token(provider) -> str:
    return provider.id_token(user="ci-bot", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1])


def test_a_github_shaped_token_is_traded_for_a_revocable_gatehouse_token(client, ci_provider,
                                                                         trust_issuer):
    trust_issuer()
    subject_token = ci_token(ci_provider)
    response = exchange(client, subject_token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["issued_token_type"] == ISSUED_TOKEN_TYPE and body["token_type"] == "Bearer"
    assert body["access_token"].startswith("gth_")
    assert 1790 <= body["expires_in"] <= 1800  # the issuer's max TTL (30 min), shorter than the id_token's
    assert response["Cache-Control"] == "no-store"
    token = authenticate_token(raw_token=body["access_token"])
    assert token.owner_username == f"gha:{CI_SUBJECT}"
    assert token.scope.to_mapping() == {"demo": ["add", "echo"], "files": None}
    issued = AuditEvent.objects.get(event="token.issued", token_jti=token.jti)
    assert issued.actor == "issuer:gha" and issued.detail["via"] == "token-exchange"
    assert issued.detail["subject"] == CI_SUBJECT
    # Neither token is written anywhere in the audit log.
    dump = " ".join(str(row.detail) + row.actor for row in AuditEvent.objects.all())
    assert subject_token.split(".")[2] not in dump and body["access_token"][4:].split(".")[2] not in dump


def test_an_id_token_typed_as_such_is_accepted_too(client, ci_provider, trust_issuer):
    trust_issuer()
    response = exchange(client, ci_token(ci_provider), subject_token_type=TOKEN_TYPE_ID_TOKEN)
    assert response.status_code == 200


def test_the_token_never_outlives_the_subject_token(client, ci_provider, trust_issuer):
    trust_issuer()
    claims = claims_for(ci_provider.issuer, exp=int(time.time()) + 120)
    signed = sign(claims, private_key_pem=ci_provider.private_key_pem, kid=ci_provider.kid)
    response = exchange(client, signed)
    assert response.status_code == 200, response.content
    assert 100 <= response.json()["expires_in"] <= 120


def test_resource_and_scope_only_narrow(client, ci_provider, trust_issuer):
    trust_issuer()
    subject_token = ci_token(ci_provider)
    narrowed = exchange(client, subject_token, resource=f"{settings.PUBLIC_URL}/mcp/demo/", scope="echo")
    assert narrowed.status_code == 200, narrowed.content
    token = authenticate_token(raw_token=narrowed.json()["access_token"])
    assert token.scope.to_mapping() == {"demo": ["echo"]}

    demo = f"{settings.PUBLIC_URL}/mcp/demo/"
    beyond = exchange(client, subject_token, resource=demo, scope="echo delete_everything")
    assert beyond.status_code == 400
    assert beyond.json() == {"error": "invalid_scope",
                             "error_description": "Not granted by the issuer 'gha': delete_everything."}
    elsewhere = "https://elsewhere.example/mcp/demo/"
    for resource in (f"{settings.PUBLIC_URL}/mcp/secret/", elsewhere, "not a url"):
        refused = exchange(client, subject_token, resource=resource)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", resource


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("wrong_audience", "wrong_audience"),
        ("unknown_issuer", "unknown_issuer"),
        ("alg_none", "algorithm"),
        ("hs256_with_public_key", "algorithm"),
        ("stranger_key_own_kid", "unknown_kid"),
        ("stranger_key_under_provider_kid", "signature"),
        ("rule_unmet", "rule_unmet"),
        ("not_a_jwt", "malformed"),
    ],
)
def test_a_hostile_or_unfit_subject_token_is_invalid_grant_and_audited(
    client, ci_provider, trust_issuer, case, reason
):
    trust_issuer()
    now = int(time.time())
    pem, kid, iss = ci_provider.private_key_pem, ci_provider.kid, ci_provider.issuer
    stranger = stranger_key_pem()
    subject_token = {
        "expired": lambda: sign(claims_for(iss, iat=now - 900, exp=now - 300), private_key_pem=pem, kid=kid),
        "not_yet_valid": lambda: sign(claims_for(iss, nbf=now + 600, exp=now + 1200), private_key_pem=pem,
                                      kid=kid),
        "wrong_audience": lambda: ci_provider.id_token(
            user="ci-bot", client_id=OTHER_CLIENT[0], client_secret=OTHER_CLIENT[1]),
        "unknown_issuer": lambda: sign(claims_for("https://evil.example"), private_key_pem=pem, kid=kid),
        "alg_none": lambda: unsigned(claims_for(iss), kid=kid),
        "hs256_with_public_key": lambda: hs256_with_public_key(claims_for(iss), private_key_pem=pem, kid=kid),
        "stranger_key_own_kid": lambda: sign(claims_for(iss), private_key_pem=stranger, kid="stranger-1"),
        "stranger_key_under_provider_kid": lambda: sign(claims_for(iss), private_key_pem=stranger, kid=kid),
        "rule_unmet": lambda: ci_provider.id_token(
            user="alice", client_id=CI_CLIENT[0], client_secret=CI_CLIENT[1]),
        "not_a_jwt": lambda: "gth_not-even-close",
    }[case]()
    response = exchange(client, subject_token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant", response.json()
    assert response["Cache-Control"] == "no-store"
    denied = AuditEvent.objects.filter(event="auth.denied").latest("id")
    assert denied.detail["via"] == "token-exchange" and denied.detail["reason"] == reason
    assert denied.outcome == "denied"
    assert not AuditEvent.objects.filter(event="token.issued").exists()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"subject_token": ""}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, "invalid_request"),
    ],
)
def test_protocol_errors_use_rfc_6749_codes(client, ci_provider, trust_issuer, form, error):
    trust_issuer()
    response = exchange(client, form.pop("subject_token", "x.y.z"), **form)
    assert response.status_code == 400
    assert response.json()["error"] == error and response.json()["error_description"]


def test_only_a_form_post_is_understood(client, ci_provider, trust_issuer):
    json_body = client.post(URL, {"grant_type": GRANT_TYPE}, content_type="application/json")
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"
    multipart = client.post(URL, {"grant_type": GRANT_TYPE})
    assert multipart.status_code == 400 and "form-encoded" in multipart.json()["error_description"]
    assert client.get(URL).status_code == 405


def test_a_key_rotated_at_the_provider_just_works(client, ci_provider, trust_issuer):
    trust_issuer()
    before = ci_token(ci_provider)
    assert exchange(client, before).status_code == 200
    old_kid = ci_provider.kid
    ci_provider.rotate_key()
    assert ci_provider.kid != old_kid
    after = ci_token(ci_provider)
    assert exchange(client, after).status_code == 200, "a new kid is fetched from the provider's JWKS"
    assert exchange(client, before).status_code == 200, "the old key is still published, so still good"


def test_revoke_subject_cuts_off_its_tokens_and_its_next_exchange(client, ci_provider, trust_issuer, capsys):
    trust_issuer()
    subject_token = ci_token(ci_provider)
    minted = exchange(client, subject_token).json()["access_token"]
    call_command("revoke_subject", "gha", CI_SUBJECT)
    assert "1 token(s)" in capsys.readouterr().out
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=minted)
    refused = exchange(client, subject_token)
    assert refused.status_code == 400 and "cut off" in refused.json()["error_description"]
    assert AuditEvent.objects.filter(event="subject.revoked", detail__subject=CI_SUBJECT).exists()

    call_command("revoke_subject", "gha", CI_SUBJECT, "--restore")
    again = exchange(client, subject_token)
    assert again.status_code == 200
    authenticate_token(raw_token=again.json()["access_token"])

"""/oauth/token: codes and refresh tokens buy gth_ tokens within the grant, once each."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.tokens.oauth.flow.steps import (
    REDIRECT,
    authorize_params,
    consent,
    exchange,
    pkce,
    query_of,
    register,
    signed_in,
    token_request,
)
from tokens.exceptions import TokenRevoked
from tokens.oauth import grants
from tokens.services import authenticate_token


def test_allow_returns_code_state_and_iss_and_the_code_buys_a_gth_token_within_the_grant(connected):
    client_id, verifier, code = connected
    status, body = exchange(client_id, verifier, code)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("gth_")
    assert body["expires_in"] == 3600
    assert body["scope"] == "mcp:demo:add mcp:demo:echo"
    verified = authenticate_token(raw_token=body["access_token"])
    assert verified.owner_username == "alice"
    assert verified.scope.to_mapping() == {"demo": ["add", "echo"]}
    issued = AuditEvent.objects.filter(event="token.issued", token_jti=verified.jti).get()
    assert issued.detail["via"] == "oauth" and issued.detail["client_id"] == client_id
    assert code not in json.dumps(list(AuditEvent.objects.values("detail")), default=str)
    assert body["refresh_token"] not in json.dumps(list(AuditEvent.objects.values("detail")), default=str)


def test_refresh_rotates_and_the_new_token_works(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    status, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert authenticate_token(raw_token=second["access_token"]).owner_username == "alice"


def test_grant_ttl_shortens_the_access_token(person):
    grants.grant_access(
        user=person, servers=["demo"], max_ttl=__import__("datetime").timedelta(minutes=10), actor="tests"
    )
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(person)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    assert page.status_code == 200
    form = {**authorize_params(client_id, challenge), "decision": "allow"}
    code = query_of(browser.post("/oauth/authorize", form)["Location"])["code"]
    status, body = exchange(client_id, verifier, code)
    assert status == 200, body
    assert body["expires_in"] == 600
    assert body["scope"] == "mcp:demo"


def test_wrong_pkce_verifier_is_refused(connected):
    client_id, _, code = connected
    status, body = exchange(client_id, pkce()[0], code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_missing_pkce_verifier_is_refused(connected):
    client_id, _, code = connected
    status, body = exchange(client_id, "", code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_code_for_another_client_is_refused(connected):
    _, verifier, code = connected
    other = register(client_name="Other")["client_id"]
    status, body = exchange(other, verifier, code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_replayed_code_revokes_the_token_it_gave(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    status, body = exchange(client_id, verifier, code)
    assert (status, body["error"]) == (400, "invalid_grant")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert AuditEvent.objects.filter(event="oauth.code_reused").exists()


def test_a_reused_refresh_token_revokes_the_whole_family(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    _, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        with pytest.raises(TokenRevoked):
            authenticate_token(raw_token=access)
    status, _ = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=second["refresh_token"]
    )
    assert status == 400
    reused = AuditEvent.objects.get(event="oauth.refresh_reused")
    assert first["refresh_token"] not in json.dumps(reused.detail)


def test_confidential_client_must_authenticate_at_the_token_endpoint(granted):
    registered = register(token_endpoint_auth_method="client_secret_basic")
    assert registered["client_secret"]
    verifier, challenge = pkce()
    browser = signed_in(granted)
    code = query_of(consent(browser, authorize_params(registered["client_id"], challenge))["Location"])[
        "code"
    ]
    status, body = exchange(registered["client_id"], verifier, code)
    assert (status, body["error"]) == (401, "invalid_client")
    basic = base64.b64encode(f"{registered['client_id']}:{registered['client_secret']}".encode()).decode()
    response = Client().post(
        "/oauth/token",
        urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            }
        ),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    # The failed attempt above spent nothing: the code was looked up only after client auth.
    assert response.status_code == 200, response.content
    assert registered["client_secret"] not in json.dumps(
        list(AuditEvent.objects.values("detail")), default=str
    )


def test_token_endpoint_errors_are_rfc_6749_json_and_never_cached(db):
    response = Client().post(
        "/oauth/token", "grant_type=password&client_id=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    client_id = register()["client_id"]
    status, body = token_request(grant_type="password", client_id=client_id)
    assert (status, body["error"]) == (400, "unsupported_grant_type")


def test_a_redirect_uri_left_out_at_authorize_need_not_be_repeated(granted):
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(granted)
    params = authorize_params(client_id, challenge, redirect_uri=None)
    location = consent(browser, params)["Location"]
    assert location.startswith(REDIRECT)
    status, body = token_request(
        grant_type="authorization_code",
        client_id=client_id,
        code=query_of(location)["code"],
        code_verifier=verifier,
    )
    assert status == 200, body


def test_a_client_that_did_not_register_refresh_gets_no_refresh_token(granted):
    client_id = register(grant_types=["authorization_code"])["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(granted)
    code = query_of(consent(browser, authorize_params(client_id, challenge))["Location"])["code"]
    status, body = exchange(client_id, verifier, code)
    assert status == 200 and "refresh_token" not in body


def test_an_inactive_person_gets_no_new_token(connected, person):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    person.is_active = False
    person.save()
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")

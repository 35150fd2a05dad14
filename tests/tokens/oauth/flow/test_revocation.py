"""Revocation: RFC 7009, the console and revoke_token end an OAuth token's whole consent."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from tests.tokens.oauth.flow.steps import (
    exchange,
    register,
    token_request,
)
from tokens.exceptions import TokenRevoked
from tokens.models import Token
from tokens.services import authenticate_token


def test_revoking_the_access_token_ends_its_refresh_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    call_command("revoke_token", authenticate_token(raw_token=first["access_token"]).jti)
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_rfc_7009_revocation_of_a_refresh_token_revokes_its_access_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    answer = Client().post(
        "/oauth/revoke",
        urlencode({"token": first["refresh_token"], "client_id": client_id}),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])


def test_another_client_cannot_revoke_someone_elses_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    other = register(client_name="Other")["client_id"]
    answer = Client().post(
        "/oauth/revoke",
        urlencode({"token": first["access_token"], "client_id": other}),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert authenticate_token(raw_token=first["access_token"]).owner_username == "alice"


def test_revoking_one_oauth_token_ends_the_others_of_its_consent(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    _, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    call_command("revoke_token", authenticate_token(raw_token=second["access_token"]).jti)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])


def test_oauth_tokens_are_listed_with_their_client(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    token = Token.objects.get(jti=authenticate_token(raw_token=first["access_token"]).jti)
    assert token.oauth_connection is not None
    assert token.oauth_connection.client.client_id == client_id

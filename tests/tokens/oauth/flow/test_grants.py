"""Grants are the ceiling: narrowing, removing or leaving a group ends what exceeds them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command

from tests.tokens.oauth.flow.steps import (
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
from tokens.services import authenticate_token


def test_a_group_grant_counts_for_its_members(person):
    group = Group.objects.create(name="engineers")
    person.groups.add(group)
    call_command("grant_access", "--group", "engineers", "--servers", "files")
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(person)
    page = browser.get(
        "/oauth/authorize",
        authorize_params(client_id, challenge, resource=f"{settings.PUBLIC_URL}/mcp/files"),
    )
    assert page.status_code == 200
    assert "Allow Claude to use files?" in page.content.decode()


def test_narrowing_a_grant_revokes_tokens_that_exceed_it(connected, person):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    call_command("grant_access", "--user", "alice", "--servers", "demo", "--tools", "echo")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    status, _ = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert status == 400


def test_removing_a_grant_revokes_the_oauth_tokens_but_not_admin_issued_ones(connected, person, make_token):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    admin_issued = make_token({"demo": None}, owner=person)
    call_command("revoke_access", "--user", "alice")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    assert authenticate_token(raw_token=admin_issued.secret).owner_username == "alice"


def test_leaving_a_group_revokes_what_its_grant_gave(person):
    group = Group.objects.create(name="engineers")
    person.groups.add(group)
    call_command("grant_access", "--group", "engineers", "--servers", "demo")
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(person)
    code = query_of(consent(browser, authorize_params(client_id, challenge))["Location"])["code"]
    _, first = exchange(client_id, verifier, code)
    assert authenticate_token(raw_token=first["access_token"]).owner_username == "alice"
    person.groups.remove(group)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])

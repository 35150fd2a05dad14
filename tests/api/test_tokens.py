"""Listing, reading, rotating and revoking tokens; which tokens a key may see and change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from core.permissions import AUDITOR_GROUP
from tests.api.conftest import bearer_client
from tests.factories import StaffUserFactory, UserFactory
from tokens.exceptions import TokenRevoked
from tokens.models import Token
from tokens.scope import TokenScope
from tokens.services import authenticate_token, issue_token

URL = "/api/v1/tokens/"


def mint(client, **body):
    body = {"name": "ci", "servers": ["demo"], "tools": {"demo": ["echo"]}, "ttl": "30m", **body}
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def someone_elses_token(servers):
    return issue_token(
        name="theirs",
        owner=UserFactory(username="bob"),
        scope=TokenScope.from_mapping({"demo": None}),
        ttl=timedelta(hours=1),
        actor="tests",
    )


def test_a_key_lists_only_its_owners_tokens(ci, ci_key, someone_elses_token):
    mine = mint(ci)
    console_issued = issue_token(
        name="for-ci-bot",
        owner=ci_key.api_key.owner,
        scope=TokenScope.from_mapping({"files": None}),
        ttl=timedelta(hours=1),
        actor="root-admin",
    )

    listed = ci.get(URL).json()["results"]

    assert {t["id"] for t in listed} == {mine["id"], console_issued.token.pk}


def test_another_owners_token_is_404_for_a_non_staff_key(ci, someone_elses_token):
    pk = someone_elses_token.token.pk

    assert ci.get(f"{URL}{pk}/").status_code == 404
    assert ci.post(f"{URL}{pk}/revoke/", {}, content_type="application/json").status_code == 404
    assert ci.post(f"{URL}{pk}/rotate/", {}, content_type="application/json").status_code == 404
    authenticate_token(raw_token=someone_elses_token.secret)  # still valid


def test_a_staff_key_sees_and_revokes_every_token(servers, make_api_key, someone_elses_token):
    staff = bearer_client(make_api_key(owner=StaffUserFactory(username="ops")).secret)

    assert someone_elses_token.token.pk in {t["id"] for t in staff.get(URL).json()["results"]}
    response = staff.post(
        f"{URL}{someone_elses_token.token.pk}/revoke/",
        {"reason": "offboarding"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_by"].startswith("ops via gthk_")


def test_an_auditors_key_may_read_every_token_but_not_change_others(
    servers, make_api_key, someone_elses_token
):
    auditor = UserFactory(username="auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client = bearer_client(make_api_key(owner=auditor).secret)
    pk = someone_elses_token.token.pk

    assert client.get(f"{URL}{pk}/").status_code == 200
    response = client.post(f"{URL}{pk}/revoke/", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_revoke_takes_effect_and_records_the_reason(ci):
    minted = mint(ci)

    response = ci.post(
        f"{URL}{minted['id']}/revoke/", {"reason": "ci-42 finished"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoke_reason"] == "ci-42 finished"
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=minted["token"])
    assert AuditEvent.objects.filter(event="token.revoked", token_jti=minted["jti"]).exists()


def test_revoke_needs_no_body(ci):
    minted = mint(ci)

    # As `curl -X POST URL` sends it: no body, no content type.
    assert ci.generic("POST", f"{URL}{minted['id']}/revoke/").status_code == 200


def test_revoking_twice_gets_409(ci):
    minted = mint(ci)
    ci.post(f"{URL}{minted['id']}/revoke/", content_type="application/json")

    response = ci.post(f"{URL}{minted['id']}/revoke/", content_type="application/json")

    assert response.status_code == 409
    assert response.json()["error"] == "invalid_state"


def test_rotate_returns_the_successor_once_and_keeps_the_old_token_for_the_grace(ci):
    minted = mint(ci)

    response = ci.post(f"{URL}{minted['id']}/rotate/", {"grace": "5m"}, content_type="application/json")

    assert response.status_code == 201
    successor = response.json()
    assert successor["token"].startswith("gth_") and successor["token"] != minted["token"]
    assert successor["scope"] == minted["scope"]
    assert authenticate_token(raw_token=successor["token"]).token_id == successor["id"]
    assert authenticate_token(raw_token=minted["token"]).token_id == minted["id"]  # in grace
    old = ci.get(f"{URL}{minted['id']}/").json()
    assert (old["status"], old["successor"]) == ("rotated", successor["id"])


def test_rotate_without_grace_ends_the_old_token_now(ci):
    minted = mint(ci)

    ci.post(f"{URL}{minted['id']}/rotate/", content_type="application/json")

    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=minted["token"])


def test_a_key_cannot_rotate_a_token_beyond_its_own_ceiling(ci, ci_key):
    wide = issue_token(
        name="wide",
        owner=ci_key.api_key.owner,
        scope=TokenScope.from_mapping({"demo": None}),
        ttl=timedelta(hours=1),
        actor="root-admin",
    )

    response = ci.post(f"{URL}{wide.token.pk}/rotate/", content_type="application/json")

    assert response.status_code == 403
    assert "all tools of 'demo'" in response.json()["detail"]
    assert Token.objects.get(pk=wide.token.pk).status == "active"


def test_a_grace_longer_than_the_keys_max_ttl_is_refused(ci):
    minted = mint(ci)

    response = ci.post(f"{URL}{minted['id']}/rotate/", {"grace": "1d"}, content_type="application/json")

    assert response.status_code == 403
    assert "grace 1d" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=active", {"live-demo", "live-files"}),
        ("status=revoked", {"gone"}),
        ("server=files", {"live-files"}),
        ("name=gone", {"gone"}),
        ("name_contains=live", {"live-demo", "live-files"}),
        ("owner=ci-bot", {"live-demo", "live-files", "gone"}),
    ],
)
def test_list_filters(servers, make_api_key, query, expected):
    client = bearer_client(make_api_key(owner=StaffUserFactory(username="ci-bot"), ceiling=None).secret)
    mint(client, name="live-demo", tools={})
    mint(client, name="live-files", servers=["files"], tools={})
    gone = mint(client, name="gone", tools={})
    client.post(f"{URL}{gone['id']}/revoke/", content_type="application/json")
    issue_token(
        name="other",
        owner=UserFactory(username="bob"),
        scope=TokenScope.from_mapping({"demo": None}),
        ttl=timedelta(hours=1),
        actor="tests",
    )
    if "owner=" not in query and "name" not in query:
        query += "&owner=ci-bot"

    results = client.get(f"{URL}?{query}").json()["results"]

    assert {t["name"] for t in results} == expected


def test_list_is_cursor_paginated(ci):
    minted = [mint(ci, name=f"ci-{i}")["id"] for i in range(5)]

    seen: list[int] = []
    url = f"{URL}?page_size=2"
    while url:
        page = ci.get(url).json()
        seen.extend(t["id"] for t in page["results"])
        url = page["next"]

    assert seen == sorted(minted, reverse=True)


def test_a_bad_filter_value_gets_400(ci):
    response = ci.get(f"{URL}?status=sleepy")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "status" in response.json()["fields"]

"""``/api/v1/grants/``: staff grant and remove self-service access; nobody else can."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import UpstreamServerFactory, UserFactory
from tokens.oauth.models import AccessGrant


@pytest.fixture
def staff_api(staff_user):
    client = APIClient(enforce_csrf_checks=False)
    client.force_authenticate(staff_user)
    return client


def test_staff_grant_list_and_remove(staff_api, db):
    UpstreamServerFactory(name="demo")
    UserFactory(username="bob")
    created = staff_api.post(
        "/api/v1/grants/",
        {"user": "bob", "servers": ["demo"], "tools": ["echo"], "max_ttl": "8h"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()[0]["tools"] == ["echo"] and created.json()[0]["max_ttl_seconds"] == 8 * 3600
    listed = staff_api.get("/api/v1/grants/").json()
    assert [(g["user"], g["server"]) for g in listed] == [("bob", "demo")]
    grant_id = listed[0]["id"]
    assert staff_api.delete(f"/api/v1/grants/{grant_id}/").status_code == 204
    assert not AccessGrant.objects.exists()


def test_a_grant_for_an_unknown_server_is_a_clear_400(staff_api, db):
    UserFactory(username="bob")
    answer = staff_api.post("/api/v1/grants/", {"user": "bob", "servers": ["nope"]}, format="json")
    assert answer.status_code == 400
    assert "Unknown server" in answer.json()["detail"]


def test_people_who_are_not_staff_cannot_read_or_grant(user, db):
    client = APIClient()
    client.force_authenticate(user)
    assert client.get("/api/v1/grants/").status_code == 403
    assert (
        client.post("/api/v1/grants/", {"user": "alice", "servers": ["demo"]}, format="json").status_code
        == 403
    )

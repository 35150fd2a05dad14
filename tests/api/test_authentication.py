"""Who may call the API: API keys (Bearer gthk_…) and console sessions with CSRF; nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from core.permissions import AUDITOR_GROUP
from tests.api.conftest import bearer_client
from tests.factories import StaffUserFactory, UserFactory
from tokens.api_keys import revoke_api_key

URL = "/api/v1/tokens/"


def assert_401(response):
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error", "detail"}


def test_no_credential_gets_401_and_is_audited(db):
    response = Client().get(URL)

    assert_401(response)
    assert response.json()["error"] == "not_authenticated"
    denied = AuditEvent.objects.get(event="auth.denied")
    assert (denied.outcome, denied.status, denied.detail["presented"]) == ("denied", 401, "none")


def test_wrong_secret_gets_401_and_the_audit_row_masks_the_key(ci_key):
    key_id = ci_key.api_key.key_id
    wrong = f"gthk_{key_id}_{'x' * 40}"

    response = bearer_client(wrong).get(URL)

    assert_401(response)
    assert response.json()["error"] == "invalid_credentials"
    denied = AuditEvent.objects.get(event="auth.denied")
    assert denied.detail["presented"] == f"gthk_{key_id}_***"
    assert "x" * 40 not in str(denied.detail)


def test_unknown_key_gets_401(db):
    assert_401(bearer_client("gthk_abcdefghijkl_" + "y" * 40).get(URL))


def test_revoked_key_gets_401(ci_key):
    revoke_api_key(api_key=ci_key.api_key, actor="tests")

    response = bearer_client(ci_key.secret).get(URL)

    assert_401(response)
    assert "revoked" in response.json()["detail"]


def test_expired_key_gets_401(servers, make_api_key):
    created = make_api_key(expires_at=timezone.now() + timedelta(seconds=30))
    type(created.api_key).objects.filter(pk=created.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = bearer_client(created.secret).get(URL)

    assert_401(response)
    assert "expired" in response.json()["detail"]


def test_key_of_a_deactivated_owner_gets_401(ci_key):
    owner = ci_key.api_key.owner
    owner.is_active = False
    owner.save()

    assert_401(bearer_client(ci_key.secret).get(URL))


def test_a_gateway_token_is_not_an_api_credential(make_token):
    issued = make_token({"demo": None})

    response = bearer_client(issued.secret).get(URL)

    assert_401(response)
    assert "gth_" in response.json()["detail"]
    assert issued.secret not in str(AuditEvent.objects.filter(event="auth.denied").values_list("detail"))


def test_an_api_key_does_not_open_the_console(servers, make_api_key):
    staff_key = make_api_key(owner=StaffUserFactory(username="ci-admin"))
    staff_key_client = bearer_client(staff_key.secret)
    assert staff_key_client.get(URL).status_code == 200

    for path in ("/console/", "/console/api-keys/", "/console/tokens/"):
        response = staff_key_client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.fixture
def csrf_staff_client(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


def test_console_session_post_without_csrf_token_is_refused(csrf_staff_client, servers):
    response = csrf_staff_client.post(
        URL, {"name": "x", "servers": ["demo"], "ttl": "5m"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "CSRF" in response.json()["detail"]
    denied = AuditEvent.objects.get(event="auth.denied")
    assert (denied.actor, denied.status, denied.detail["presented"]) == ("root-admin", 403, "session")


def test_console_session_with_csrf_token_may_mint_without_a_ceiling(csrf_staff_client, servers):
    csrf_staff_client.get("/console/")  # sets the csrftoken cookie
    token = csrf_staff_client.cookies["csrftoken"].value

    response = csrf_staff_client.post(
        URL,
        {"name": "by-hand", "servers": ["demo"], "ttl": "7d"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201
    assert response.json()["owner"] == "root-admin"
    assert response.json()["scope"] == {"demo": None}


def test_console_session_reads_need_staff_or_auditor(db):
    member = UserFactory(username="member")
    client = Client()
    client.force_login(member)

    assert client.get(URL).status_code == 403

    member.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    assert client.get(URL).status_code == 200


def test_auditor_session_cannot_mint(db, servers):
    auditor = UserFactory(username="auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client = Client()
    client.force_login(auditor)

    response = client.post(URL, {"name": "x", "servers": ["demo"]}, content_type="application/json")

    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="auth.denied", status=403, actor="auditor").exists()


def test_basic_auth_is_not_accepted(db):
    response = Client(HTTP_AUTHORIZATION="Basic YWRtaW46YWRtaW4=").get(URL)

    assert response.status_code == 401

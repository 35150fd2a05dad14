"""The console's front door: / goes to /console/, which needs a login; sign-ins are audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit import events
from audit.models import AuditEvent
from core.permissions import AUDITOR_GROUP
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
NAVIGATION = {"/console/servers/": "Servers", "/console/tokens/": "Tokens", "/console/sessions/": "Sessions",
              "/console/audit/": "Audit", "/console/api-keys/": "API keys"}


def test_root_redirects_to_console(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/console/"


def test_console_requires_login(client, db):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"


def test_login_page_renders(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_dashboard_shows_the_navigation(staff_client):
    response = staff_client.get("/console/")
    assert response.status_code == 200
    html = response.content.decode()
    for href, label in NAVIGATION.items():
        assert f'href="{href}"' in html and label in html


def test_auditor_may_read_the_dashboard(client, db):
    auditor = UserFactory(username="reader")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client.force_login(auditor)
    assert client.get("/console/").status_code == 200


def test_plain_user_is_refused_the_console_and_sent_to_my_access(client, user):
    client.force_login(user)
    assert client.get("/console/")["Location"] == "/console/me/"
    response = client.get("/console/audit/")
    assert response.status_code == 403
    assert b"The console is for staff and auditors." in response.content


def test_login_is_audited_without_the_password(client, staff_user):
    response = client.post("/accounts/login/", {"username": staff_user.username, "password": PASSWORD},
                           HTTP_USER_AGENT="pytest-browser/1.0")
    assert response.status_code == 302 and response["Location"] == "/console/"
    event = AuditEvent.objects.get(event=events.CONSOLE_LOGIN)
    assert event.actor == staff_user.username
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.client_ip == "127.0.0.1"
    assert event.user_agent == "pytest-browser/1.0"
    assert PASSWORD not in str(AuditEvent.objects.values())


def test_failed_login_is_audited_as_denied_without_the_password(client, staff_user):
    response = client.post("/accounts/login/",
                           {"username": staff_user.username, "password": "wrong-Pa55word"})
    assert response.status_code == 200  # the form again, with an error
    event = AuditEvent.objects.get(event=events.CONSOLE_LOGIN_FAILED)
    assert event.actor == staff_user.username
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert "wrong-Pa55word" not in str(AuditEvent.objects.values())


def test_failed_login_with_unknown_username_does_not_record_what_was_typed(client, db):
    """People paste their password into the username box; that text must not be kept."""
    client.post("/accounts/login/", {"username": "my-Secret-Passw0rd", "password": "x"})
    event = AuditEvent.objects.get(event=events.CONSOLE_LOGIN_FAILED)
    assert event.actor == ""
    assert event.detail == {"reason": "unknown username"}
    assert "my-Secret-Passw0rd" not in str(AuditEvent.objects.values())


def test_logout_is_audited(staff_client, staff_user):
    response = staff_client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert AuditEvent.objects.filter(event=events.CONSOLE_LOGOUT, actor=staff_user.username).count() == 1


@pytest.mark.parametrize("path", ["/accounts/logout/"])
def test_logout_needs_post(staff_client, path):
    assert staff_client.get(path).status_code == 405

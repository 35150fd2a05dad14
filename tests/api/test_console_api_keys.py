"""Console pages at /console/api-keys/: list, create (key shown once), revoke."""

from __future__ import annotations

import re

from django.contrib.auth.models import Group
from django.test import Client

from audit.models import AuditEvent
from core.permissions import AUDITOR_GROUP
from tests.api.conftest import bearer_client
from tests.factories import UserFactory
from tokens.models import ApiKey, Token


def create_form(client: Client) -> dict[str, str]:
    page = client.get("/console/api-keys/new/")
    assert page.status_code == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.content.decode()).group(1)
    return {
        "name": "gha-deploy",
        "owner": "ci-bot",
        "servers": ["demo"],
        "tools": "echo",
        "max_ttl": "1h",
        "expires_in": "",
        "nonce": nonce,
    }


def test_staff_create_a_key_and_see_it_once(staff_client, servers):
    UserFactory(username="ci-bot")
    form = create_form(staff_client)

    page = staff_client.post("/console/api-keys/new/", form)

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    key = re.search(r'value="(gthk_[^"]+)"', page.content.decode()).group(1)
    stored = ApiKey.objects.get()
    assert stored.scope_ceiling == {"demo": ["echo"]}
    assert stored.created_by == "root-admin"
    assert bearer_client(key).get("/api/v1/servers/").status_code == 200
    listing = staff_client.get("/console/api-keys/").content.decode()
    assert stored.display_prefix in listing and key not in listing


def test_resubmitting_the_form_does_not_create_a_second_key(staff_client, servers):
    UserFactory(username="ci-bot")
    form = create_form(staff_client)
    staff_client.post("/console/api-keys/new/", form)

    again = staff_client.post("/console/api-keys/new/", form)

    assert again.status_code == 302
    assert ApiKey.objects.count() == 1


def test_create_form_reports_bad_input(staff_client, servers):
    form = create_form(staff_client) | {"owner": "nobody", "max_ttl": "forever"}

    page = staff_client.post("/console/api-keys/new/", form)

    assert page.status_code == 200
    assert "No active user named" in page.content.decode()
    assert not ApiKey.objects.exists()


def test_tools_may_be_given_one_per_line(staff_client, servers):
    UserFactory(username="ci-bot")
    form = create_form(staff_client) | {"servers": ["demo", "files"], "tools": "echo\r\nfiles:read,\n"}

    staff_client.post("/console/api-keys/new/", form)

    assert ApiKey.objects.get().scope_ceiling == {"demo": ["echo"], "files": ["echo", "read"]}


def test_revoking_a_key_can_also_revoke_its_tokens(staff_client, ci, ci_key):
    minted = ci.post(
        "/api/v1/tokens/",
        {"name": "ci", "servers": ["demo"], "tools": {"demo": ["echo"]}},
        content_type="application/json",
    ).json()
    url = f"/console/api-keys/{ci_key.api_key.pk}/revoke/"
    assert "1 token" in staff_client.get(url).content.decode()

    response = staff_client.post(url, {"revoke_tokens": "on"})

    assert response.status_code == 302
    assert ci.get("/api/v1/tokens/").status_code == 401
    assert Token.objects.get(pk=minted["id"]).status == "revoked"
    assert AuditEvent.objects.filter(event="apikey.revoked").exists()


def test_auditors_read_the_list_but_cannot_create_or_revoke(ci_key):
    auditor = UserFactory(username="auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client = Client()
    client.force_login(auditor)

    assert client.get("/console/api-keys/").status_code == 200
    assert client.get("/console/api-keys/new/").status_code == 403
    assert client.post(f"/console/api-keys/{ci_key.api_key.pk}/revoke/").status_code == 403

"""Connected accounts in the console: My access connects and disconnects a person's own (a pasted
key is never shown back); the server page shows staff who connected and lets them disconnect anyone."""

from __future__ import annotations

import pytest
from django.test import Client

from audit import events
from audit.models import AuditEvent
from tests.factories import UserFactory
from upstreams import services
from upstreams.accounts import services as accounts
from upstreams.accounts.models import ConnectedAccount
from upstreams.models import UpstreamServer
from upstreams.user_credentials import UserCredentialSettings

pytestmark = pytest.mark.django_db

KEY = "sk-pasted-secret-4242"


@pytest.fixture
def keyed(db) -> UpstreamServer:
    return services.create_server(name="keyed", url="http://127.0.0.1:9/mcp", actor="tests",
                                  user_credential=UserCredentialSettings(spec="header:X-Api-Key"))


def test_my_access_lists_servers_that_take_my_own_key_and_connects_one(plain_client, keyed, user):
    page = plain_client.get("/console/me/").content.decode()
    assert "Connected accounts" in page and "keyed" in page and "not connected" in page

    answer = plain_client.post("/console/me/connect/keyed/", {"value": KEY}, follow=True)

    assert ConnectedAccount.objects.get(user=user, server=keyed).status == "connected"
    page = answer.content.decode()
    assert "Connected your key for keyed" in page and KEY not in page
    assert KEY not in plain_client.get("/console/me/").content.decode()


def test_my_access_disconnects_my_own(plain_client, keyed, user):
    accounts.connect_key(user=user, server=keyed, value=KEY, actor="alice")
    plain_client.post("/console/me/connect/keyed/disconnect/")
    assert not ConnectedAccount.objects.exists()
    assert AuditEvent.objects.filter(event=events.ACCOUNT_DISCONNECTED, owner="alice", actor="alice").exists()


def test_a_bad_key_is_refused_without_echoing_it(plain_client, keyed):
    page = plain_client.post("/console/me/connect/keyed/", {"value": "line1\nline2-secret"}, follow=True)
    assert "one line" in page.content.decode() and "line2-secret" not in page.content.decode()
    assert not ConnectedAccount.objects.exists()


def test_staff_see_who_connected_and_can_disconnect_anyone_never_the_value(staff_client, keyed, user):
    accounts.connect_key(user=user, server=keyed, value=KEY, actor="alice")
    page = staff_client.get("/console/servers/keyed/").content.decode()
    assert "alice" in page and "X-Api-Key" in page and KEY not in page

    staff_client.post("/console/servers/keyed/accounts/alice/disconnect/")

    assert not ConnectedAccount.objects.exists()
    removed = AuditEvent.objects.get(event=events.ACCOUNT_DISCONNECTED)
    assert (removed.owner, removed.actor) == ("alice", "root-admin")


def test_a_person_cannot_disconnect_someone_else(plain_client, keyed):
    bob = UserFactory(username="bob")
    accounts.connect_key(user=bob, server=keyed, value=KEY, actor="bob")
    answer = plain_client.post("/console/servers/keyed/accounts/bob/disconnect/")
    assert answer.status_code in (302, 403)
    assert ConnectedAccount.objects.filter(user=bob).exists()


def test_the_console_adds_a_server_with_a_user_credential(staff_client):
    staff_client.post("/console/servers/add/", {
        "name": "notes", "url": "http://127.0.0.1:9/mcp", "transport": "streamable",
        "user_credential": "header:X-Notes-Key", "identity_header": "Authorization", "isolation": "shared",
        "max_processes": 10,
    })
    server = UpstreamServer.objects.get(name="notes")
    assert (server.user_credential, server.user_credential_header) == ("header", "X-Notes-Key")


def test_connect_pages_need_a_signed_in_person(keyed):
    answer = Client().post("/console/me/connect/keyed/", {"value": KEY})
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]

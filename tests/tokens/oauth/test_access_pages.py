""" "My access" for anyone signed in, "Access" for staff: what each person sees and can end."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory, UserFactory
from tokens.models import Token
from tokens.oauth import grants
from tokens.oauth.models import AccessGrant, Connection, OAuthClient


@pytest.fixture
def demo(db):
    return UpstreamServerFactory(name="demo")


def test_a_person_who_is_not_staff_lands_on_my_access_and_never_sees_the_admin_console(plain_client, demo):
    assert plain_client.get("/console/")["Location"] == "/console/me/"
    assert plain_client.get("/console/tokens/").status_code == 403
    assert plain_client.get("/console/access/").status_code == 403
    page = plain_client.get("/console/me/").content.decode()
    assert "My access" in page and 'href="/console/servers/"' not in page


def test_my_access_lists_my_grants_connections_and_tokens_and_disconnect_revokes(user, demo, make_token):
    grants.grant_access(user=user, servers=["demo"], tools=["echo"], actor="tests")
    client = OAuthClient.objects.create(client_id="gthc_x", kind="dynamic", name="Claude", redirect_uris=[])
    connection = Connection.objects.create(
        user=user, client=client, resource="http://x/mcp", scope={"demo": ["echo"]}
    )
    issued = make_token({"demo": ["echo"]}, owner=user)
    Token.objects.filter(pk=issued.token.pk).update(oauth_connection=connection)
    browser = Client()
    browser.force_login(user)
    page = browser.get("/console/me/").content.decode()
    assert "Claude" in page and "echo" in page and issued.token.display_prefix in page
    browser.post(f"/console/me/connections/{connection.pk}/disconnect/")
    assert Token.objects.get(pk=issued.token.pk).status == Token.Status.REVOKED
    assert AuditEvent.objects.filter(event="oauth.disconnected", owner="alice").exists()


def test_nobody_can_disconnect_or_revoke_someone_elses(user, demo, make_token):
    other = UserFactory(username="mallory")
    client = OAuthClient.objects.create(client_id="gthc_y", kind="dynamic", name="Claude", redirect_uris=[])
    connection = Connection.objects.create(
        user=user, client=client, resource="http://x/mcp", scope={"demo": None}
    )
    issued = make_token({"demo": None}, owner=user)
    browser = Client()
    browser.force_login(other)
    assert browser.post(f"/console/me/connections/{connection.pk}/disconnect/").status_code == 404
    assert browser.post(f"/console/me/tokens/{issued.token.pk}/revoke/").status_code == 404
    assert Token.objects.get(pk=issued.token.pk).status == Token.Status.ACTIVE


def test_staff_grant_and_remove_access_on_the_access_page(staff_client, user, demo):
    staff_client.post("/console/access/", {"subject": "user:alice", "servers": "demo", "tools": "echo"})
    grant = AccessGrant.objects.get(user=user)
    assert grant.tools == ["echo"]
    assert "user alice" in staff_client.get("/console/access/").content.decode()
    staff_client.post("/console/access/", {"action": "remove", "grant": grant.pk})
    assert not AccessGrant.objects.exists()


def test_staff_register_a_client_and_see_its_secret_once(staff_client):
    page = staff_client.post(
        "/console/access/clients/", {"name": "Internal app", "redirect_uris": "https://app.example/cb"}
    )
    client = OAuthClient.objects.get(name="Internal app")
    assert client.kind == "console" and client.token_endpoint_auth_method == "client_secret_basic"
    html = page.content.decode()
    assert client.client_id in html and "Client secret (shown once)" in html
    assert page["Cache-Control"] == "no-store"
    assert client.secret_digest and client.secret_digest not in html


def test_the_server_page_offers_the_url_alone_first(staff_client, demo, settings):
    html = staff_client.get("/console/servers/demo/").content.decode()
    assert "Connect with only the URL" in html
    assert html.index(f"{settings.PUBLIC_URL}/mcp/demo/") < html.index("Gateway path")


def test_the_console_lists_oauth_tokens_with_their_client(staff_client, user, demo, make_token):
    client = OAuthClient.objects.create(client_id="gthc_z", kind="dynamic", name="Cursor", redirect_uris=[])
    connection = Connection.objects.create(
        user=user, client=client, resource="http://x/mcp", scope={"demo": None}
    )
    issued = make_token({"demo": None}, owner=user)
    Token.objects.filter(pk=issued.token.pk).update(oauth_connection=connection)
    assert "Cursor (OAuth)" in staff_client.get("/console/tokens/").content.decode()
    detail = staff_client.get(f"/console/tokens/{issued.token.pk}/").content.decode()
    assert "OAuth client" in detail and "Cursor" in detail and "gthc_z" in detail

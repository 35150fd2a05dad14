"""Console server pages: staff add, edit and disable; auditors read; secrets never rendered."""

from __future__ import annotations

import pytest

from audit import events
from audit.models import AuditEvent
from core import encryption
from upstreams.models import UpstreamServer
from upstreams.services import create_server


@pytest.fixture
def server(db):
    return create_server(
        name="demo",
        url="http://127.0.0.1:9/mcp",
        headers={"Authorization": "Bearer up-secret-1"},
        actor="seed",
    )


ADD = {
    "name": "files",
    "url": "http://files:8080/mcp",
    "transport": "streamable",
    "description": "File tools",
    "headers": "Authorization: Bearer up-secret-2\nX-Team: team-secret",
}


def test_staff_adds_a_server_through_the_form(staff_client):
    response = staff_client.post("/console/servers/add/", ADD)
    assert response.status_code == 302 and response["Location"] == "/console/servers/files/"
    server = UpstreamServer.objects.get(name="files")
    assert encryption.decrypt_json(server.headers_encrypted) == {
        "Authorization": "Bearer up-secret-2", "X-Team": "team-secret"}
    row = AuditEvent.objects.get(event=events.SERVER_CREATED)
    assert row.actor == "root-admin" and row.client_ip == "127.0.0.1"


def test_add_form_is_labelled_and_protected_by_csrf(staff_client):
    html = staff_client.get("/console/servers/add/").content.decode()
    for field in ("name", "url", "transport", "description", "headers"):
        assert f'<label for="id_{field}"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_invalid_input_is_shown_next_to_the_field(staff_client, server):
    response = staff_client.post("/console/servers/add/", ADD | {"name": "demo", "headers": "Host: evil"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "managed by the gateway" in html
    response = staff_client.post("/console/servers/add/", ADD | {"name": "demo"})
    assert "already exists" in response.content.decode()
    assert UpstreamServer.objects.count() == 1


def test_pages_show_header_names_never_values(staff_client, server):
    for url in ("/console/servers/", "/console/servers/demo/", "/console/servers/demo/edit/"):
        html = staff_client.get(url).content.decode()
        assert "Authorization" in html, url
        assert "up-secret-1" not in html, url


def test_edit_replaces_and_removes_headers(staff_client, server):
    response = staff_client.post("/console/servers/demo/edit/", {
        "url": "http://127.0.0.1:9/sse", "transport": "sse", "description": "",
        "headers": "X-New: new-secret", "remove_headers": ["Authorization"],
    })
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.transport == "sse"
    assert encryption.decrypt_json(server.headers_encrypted) == {"X-New": "new-secret"}
    assert "new-secret" not in repr(AuditEvent.objects.get(event=events.SERVER_UPDATED).detail)


def test_edit_form_masks_url_credentials_and_keeps_them_when_the_url_is_left_alone(staff_client, server):
    server.url = "http://svc:pw-secret-999@127.0.0.1:9/mcp?apikey=q-secret-777"
    server.save()
    html = staff_client.get("/console/servers/demo/edit/").content.decode()
    assert "pw-secret-999" not in html and "q-secret-777" not in html
    shown = "http://svc:***@127.0.0.1:9/mcp?apikey=***"
    assert f'value="{shown}"' in html

    response = staff_client.post(
        "/console/servers/demo/edit/", {"url": shown, "transport": "streamable", "description": "kept"}
    )
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.target_url == "http://svc:pw-secret-999@127.0.0.1:9/mcp?apikey=q-secret-777"
    assert server.url == shown
    assert server.description == "kept"


def test_disable_and_enable_by_post_only(staff_client, server):
    assert staff_client.get("/console/servers/demo/disable/").status_code == 405
    assert staff_client.post("/console/servers/demo/disable/").status_code == 302
    server.refresh_from_db()
    assert not server.enabled
    assert "disabled" in staff_client.get("/console/servers/").content.decode()
    staff_client.post("/console/servers/demo/enable/", {"back": "detail"})
    server.refresh_from_db()
    assert server.enabled


def test_auditor_reads_servers_but_cannot_change_them(auditor_client, server):
    assert auditor_client.get("/console/servers/").status_code == 200
    assert auditor_client.get("/console/servers/demo/").status_code == 200
    html = auditor_client.get("/console/servers/").content.decode()
    assert "Add a server" not in html and "Disable" not in html
    assert auditor_client.get("/console/servers/add/").status_code == 403
    assert auditor_client.post("/console/servers/add/", ADD).status_code == 403
    assert auditor_client.post("/console/servers/demo/edit/", {"url": "http://x:1/mcp"}).status_code == 403
    assert auditor_client.post("/console/servers/demo/disable/").status_code == 403
    server.refresh_from_db()
    assert server.enabled and not UpstreamServer.objects.filter(name="files").exists()


def test_users_without_a_console_role_are_refused(plain_client, server):
    assert plain_client.get("/console/servers/").status_code == 403


def test_anonymous_visitors_are_sent_to_login(client, server):
    response = client.get("/console/servers/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_post_without_csrf_token_is_refused(csrf_staff_client, server):
    assert csrf_staff_client.post("/console/servers/add/", ADD).status_code == 403
    assert csrf_staff_client.post("/console/servers/demo/disable/").status_code == 403
    server.refresh_from_db()
    assert server.enabled


def test_unknown_server_is_404(staff_client, db):
    assert staff_client.get("/console/servers/nope/").status_code == 404


def test_detail_page_says_when_the_upstream_cannot_be_reached(staff_client, server):
    html = staff_client.get("/console/servers/demo/").content.decode()
    assert "Could not list the tools" in html


@pytest.mark.integration
def test_detail_page_lists_the_live_tools(staff_client, upstream_mcp, register_upstream):
    register_upstream(name="live", url=upstream_mcp)
    html = staff_client.get("/console/servers/live/").content.decode()
    assert "<code>echo</code>" in html and "Return the text unchanged." in html


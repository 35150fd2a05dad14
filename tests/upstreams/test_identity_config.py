"""Identity to upstreams, configuration: the per-server opt-in and its rules, wherever it is set
(service, CLI, console, REST API representation)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import events
from audit.models import AuditEvent
from upstreams.exceptions import InvalidServerConfig
from upstreams.models import UpstreamServer
from upstreams.services import create_server, update_server
from upstreams.target import TARGET_FIELDS, enabled_target, target_of

URL = "http://127.0.0.1:9/mcp"


def test_identity_forwarding_is_off_by_default_with_authorization_as_its_header(db):
    server = create_server(name="plain", url=URL, actor="tests")
    assert server.forward_identity is False and server.identity_header == "Authorization"
    target = target_of(server)
    assert target.forward_identity is False and target.identity_header == "Authorization"


def test_turned_on_it_is_stored_audited_and_carried_on_the_target(db):
    server = create_server(
        name="notes", url="https://bot:pw@notes.example/mcp?key=k1", actor="tests", forward_identity=True
    )
    row = AuditEvent.objects.get(event=events.SERVER_CREATED, server="notes")
    assert row.detail["forward_identity"] is True and row.detail["identity_header"] == "Authorization"
    assert {"forward_identity", "identity_header"} <= set(TARGET_FIELDS)
    target = enabled_target("notes")
    assert target is not None and target.forward_identity and target.identity_header == "Authorization"
    # The assertion's audience is the public, redacted URL; the dialled one keeps its credentials.
    assert target.public_url == "https://bot:***@notes.example/mcp?key=***"
    assert "pw" in target.url and "pw" not in target.public_url
    assert server.url == target.public_url


def test_a_static_authorization_header_needs_another_identity_header(db):
    with pytest.raises(InvalidServerConfig) as info:
        create_server(
            name="clash", url=URL, actor="tests", headers={"authorization": "Bearer up"},
            forward_identity=True,
        )
    assert "static authorization header" in info.value.detail.lower()
    assert "identity-header" in info.value.detail
    server = create_server(
        name="clash", url=URL, actor="tests", headers={"Authorization": "Bearer up"},
        forward_identity=True, identity_header="X-Gatehouse-Identity",
    )
    assert server.identity_header == "X-Gatehouse-Identity"


def test_any_static_header_of_the_identity_headers_name_clashes(db):
    with pytest.raises(InvalidServerConfig):
        create_server(
            name="clash", url=URL, actor="tests", headers={"X-Who": "static"},
            forward_identity=True, identity_header="x-who",
        )


@pytest.mark.parametrize("name", ["", "Bad Name", "Host", "Mcp-Session-Id", "Content-Type", "X" * 65, "a:b"])
def test_invalid_identity_header_names_are_refused(db, name):
    with pytest.raises(InvalidServerConfig):
        create_server(name="bad", url=URL, actor="tests", forward_identity=True, identity_header=name)


def test_update_turns_it_on_and_off_and_checks_the_clash_against_the_resulting_headers(db):
    server = create_server(name="notes", url=URL, actor="tests", headers={"Authorization": "Bearer up"})
    with pytest.raises(InvalidServerConfig):
        update_server(server=server, actor="tests", forward_identity=True)
    # Removing the static header in the same edit makes room for the default.
    server = update_server(
        server=server, actor="tests", forward_identity=True, remove_headers=["authorization"]
    )
    assert server.forward_identity and server.identity_header == "Authorization"
    row = AuditEvent.objects.filter(event=events.SERVER_UPDATED).latest("id")
    assert "forward_identity" in row.detail["changed"] and row.detail["forward_identity"] is True
    # Adding a static header that clashes with the identity header is refused too.
    with pytest.raises(InvalidServerConfig):
        update_server(server=server, actor="tests", set_headers={"Authorization": "Bearer again"})
    server = update_server(server=server, actor="tests", identity_header="X-Identity")
    assert server.identity_header == "X-Identity"
    server = update_server(server=server, actor="tests", set_headers={"Authorization": "Bearer again"})
    server = update_server(server=server, actor="tests", forward_identity=False)
    assert not UpstreamServer.objects.get(name="notes").forward_identity


def test_add_server_command_takes_forward_identity_and_identity_header(db):
    out = io.StringIO()
    call_command("add_server", "notes", URL, "--forward-identity", stdout=out)
    assert "identity forwarded in Authorization" in out.getvalue()
    assert UpstreamServer.objects.get(name="notes").forward_identity
    call_command(
        "add_server", "notes2", URL, "--header", "Authorization: Bearer up", "--forward-identity",
        "--identity-header", "X-Gatehouse-Identity", stdout=out,
    )
    assert UpstreamServer.objects.get(name="notes2").identity_header == "X-Gatehouse-Identity"


def test_add_server_command_refuses_the_clash_and_a_header_without_the_flag(db):
    with pytest.raises(CommandError, match="static Authorization header"):
        call_command(
            "add_server", "notes", URL, "--header", "Authorization: Bearer up", "--forward-identity",
            stdout=io.StringIO(),
        )
    with pytest.raises(CommandError, match="needs --forward-identity"):
        call_command("add_server", "notes", URL, "--identity-header", "X-Id", stdout=io.StringIO())
    assert not UpstreamServer.objects.exists()


def test_console_add_and_edit_forms_set_it_and_show_the_clash(staff_client):
    form = {"name": "notes", "url": URL, "transport": "streamable", "description": "",
            "headers": "Authorization: Bearer up", "forward_identity": "on", "identity_header": ""}
    response = staff_client.post("/console/servers/add/", form)
    assert response.status_code == 200 and "static Authorization header" in response.content.decode()
    response = staff_client.post("/console/servers/add/", form | {"identity_header": "X-Gatehouse-Identity"})
    assert response.status_code == 302
    server = UpstreamServer.objects.get(name="notes")
    assert server.forward_identity and server.identity_header == "X-Gatehouse-Identity"
    detail = staff_client.get("/console/servers/notes/").content.decode()
    assert "Identity forwarded" in detail and "X-Gatehouse-Identity" in detail

    edit = staff_client.get("/console/servers/notes/edit/").content.decode()
    assert 'name="forward_identity"' in edit and "checked" in edit
    response = staff_client.post(
        "/console/servers/notes/edit/",
        {"url": URL, "transport": "streamable", "description": "", "headers": "", "identity_header": ""},
    )
    assert response.status_code == 302
    server.refresh_from_db()
    assert not server.forward_identity and server.identity_header == "Authorization"


def test_the_api_server_representation_shows_the_setting(staff_client, db):
    create_server(
        name="notes", url=URL, actor="tests", forward_identity=True, identity_header="X-Gatehouse-Identity"
    )
    create_server(name="plain", url=URL, actor="tests")
    servers = {s["name"]: s for s in staff_client.get("/api/v1/servers/").json()}
    assert servers["notes"]["forward_identity"] is True
    assert servers["notes"]["identity_header"] == "X-Gatehouse-Identity"
    assert servers["plain"]["forward_identity"] is False

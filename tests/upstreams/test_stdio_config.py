"""Registering stdio servers: `add_server --command`, the console and the API; environment values secret.

No runner here: these check what is stored, audited, shown and refused.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit import events
from audit.models import AuditEvent
from core import encryption
from upstreams.exceptions import InvalidServerConfig
from upstreams.models import UpstreamServer
from upstreams.services import StdioChanges, StdioSettings, create_server, update_server
from upstreams.target import target_of

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789"


def _add(*args: str) -> str:
    out = io.StringIO()
    call_command("add_server", *args, stdout=out)
    return out.getvalue()


def test_add_server_with_a_command_registers_a_stdio_server_with_its_environment_encrypted():
    out = _add("fetch", "--command", "uvx mcp-server-fetch --ignore-robots-txt", "--env", f"API_KEY={SECRET}",
               "--env", "MODE=a=b", "--isolation", "session", "--max-processes", "3", "--cwd", "/srv")
    assert "Added stdio server fetch: uvx (session isolation); environment: API_KEY, MODE" in out
    assert "clients use /mcp/fetch/" in out and SECRET not in out
    server = UpstreamServer.objects.get(name="fetch")
    assert (server.transport, server.url, server.isolation, server.max_processes, server.cwd) == (
        "stdio", "", "session", 3, "/srv")
    assert SECRET not in server.env_encrypted
    assert encryption.decrypt_json(server.env_encrypted) == {"API_KEY": SECRET, "MODE": "a=b"}
    detail = AuditEvent.objects.get(event=events.SERVER_CREATED).detail
    assert detail["env_names"] == ["API_KEY", "MODE"] and detail["program"] == "uvx"
    assert SECRET not in repr(detail)


def test_the_gateway_dials_a_stdio_server_on_the_runner_with_the_runner_key(settings):
    settings.STDIO_RUNNER_URL = "http://runner.internal:8001"
    _add("notes", "--command", "notes-server", "--env", f"TOKEN={SECRET}")
    target = target_of(UpstreamServer.objects.get(name="notes"))
    assert target.url == "http://runner.internal:8001/servers/notes/mcp"
    assert dict(target.headers) == {"X-Gatehouse-Runner-Key": settings.STDIO_RUNNER_KEY}
    assert target.transport.endpoint_name == "streamable"  # clients use /mcp/notes/


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "http://up/mcp", "--command", "tool"], "has no URL"),
        (["x", "--command", "   "], "needs a command"),
        (["x", "--command", "tool 'unclosed"], "cannot be split"),
        (["x", "--command", "tool", "--env", f"BAD NAME={SECRET}"], "NAME=value"),
        (["x", "--command", "tool", "--env", "NO_EQUALS_SIGN"], "NAME=value"),
        (["x", "--command", "tool", "--cwd", "relative/dir"], "absolute path"),
        (["x", "--command", "tool", "--isolation", "session", "--max-processes", "0"], "between 1 and"),
        (["x", "--command", "tool", "--forward-identity"], "no identity to forward"),
        (["x", "http://up/mcp", "--transport", "streamable", "--env", "A=b"], "only for stdio servers"),
    ],
)
def test_bad_stdio_settings_are_refused_with_a_clear_message_that_shows_no_value(args, message):
    with pytest.raises(CommandError) as refused:
        _add(*args)
    assert message in str(refused.value)
    assert SECRET not in str(refused.value)
    assert not UpstreamServer.objects.filter(name="x").exists()


def test_an_edit_sets_and_removes_environment_entries_and_audits_names_only():
    server = create_server(
        name="svc", url="", transport="stdio", actor="admin",
        stdio=StdioSettings(command="svc --flag", env={"OLD": "old-value-1", "KEEP": "keep-value-1"}),
    )
    update_server(server=server, actor="admin",
                  stdio=StdioChanges(set_env={"NEW": SECRET}, remove_env=["OLD"], isolation="session"))
    server.refresh_from_db()
    assert encryption.decrypt_json(server.env_encrypted) == {"KEEP": "keep-value-1", "NEW": SECRET}
    assert server.isolation == "session"
    detail = AuditEvent.objects.filter(event=events.SERVER_UPDATED).latest("id").detail
    assert detail["changed"] == ["env", "isolation"] and detail["env_names"] == ["KEEP", "NEW"]
    assert SECRET not in repr(detail)


def test_an_http_server_cannot_become_stdio_without_a_command():
    server = create_server(name="web", url="http://up:1/mcp", actor="admin")
    with pytest.raises(InvalidServerConfig, match="has no URL"):
        update_server(server=server, actor="admin", transport="stdio")
    with pytest.raises(InvalidServerConfig, match="needs a command"):
        update_server(server=server, actor="admin", transport="stdio", url="")


def test_console_adds_a_stdio_server_and_never_shows_environment_values(staff_client):
    response = staff_client.post("/console/servers/add/", {
        "name": "files", "url": "", "transport": "stdio",
        "command": "npx -y @modelcontextprotocol/server-filesystem /data",
        "env": f"API_KEY={SECRET}\nREGION=eu", "isolation": "shared", "max_processes": "10",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    server = UpstreamServer.objects.get(name="files")
    assert server.command.startswith("npx -y")
    assert encryption.decrypt_json(server.env_encrypted)["API_KEY"] == SECRET
    page = staff_client.get("/console/servers/files/").content.decode()
    assert "API_KEY, REGION" in page and SECRET not in page
    assert "not reported" in page  # no runner reports it in this test
    listing = staff_client.get("/console/servers/").content.decode()
    assert "npx -y @modelcontextprotocol/server-filesystem" in listing and SECRET not in listing
    edit = staff_client.get("/console/servers/files/edit/").content.decode()
    assert SECRET not in edit and "API_KEY" in edit


def test_console_asks_for_a_url_only_when_the_transport_is_not_stdio(staff_client):
    response = staff_client.post("/console/servers/add/", {"name": "nourl", "transport": "streamable"})
    assert response.status_code == 200
    assert "An upstream URL is required" in response.content.decode()


def test_the_api_lists_a_stdio_server_with_environment_names_only(staff_client):
    create_server(name="svc", url="", transport="stdio", actor="admin",
                  stdio=StdioSettings(command="svc --serve", env={"API_KEY": SECRET}))
    body = staff_client.get("/api/v1/servers/svc/").json()
    assert body["transport"] == "stdio" and body["upstream_url"] is None
    assert body["mcp_url"].endswith("/mcp/svc/")
    assert body["stdio"]["env_names"] == ["API_KEY"] and body["stdio"]["state"] == "not reported"
    assert SECRET not in repr(body)

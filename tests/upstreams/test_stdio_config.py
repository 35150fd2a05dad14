"""Registering stdio servers: `add_server --command`, the console and the API; environment values secret.

No runner here: these check what is stored, audited, shown and refused.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

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
    out = _add("fetch", "--command", "uvx mcp-server-fetch --ignore-robots-txt", "--no-check-command",
               "--env", f"API_KEY={SECRET}", "--env", "MODE=a=b", "--isolation", "session",
               "--max-processes", "3", "--cwd", "/srv")
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
    _add("notes", "--command", "notes-server", "--no-check-command", "--env", f"TOKEN={SECRET}")
    target = target_of(UpstreamServer.objects.get(name="notes"))
    assert target.url == "http://runner.internal:8001/servers/notes/mcp"
    assert dict(target.headers) == {"X-Gatehouse-Runner-Key": settings.STDIO_RUNNER_KEY}
    assert target.transport.endpoint_name == "streamable"  # clients use /mcp/notes/


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "http://up/mcp", "--command", "true"], "has no URL"),
        (["x", "--command", "   "], "needs a command"),
        (["x", "--command", "tool 'unclosed"], "cannot be split"),
        (["x", "--command", "true", "--env", f"BAD NAME={SECRET}"], "NAME=value"),
        (["x", "--command", "true", "--env", "NO_EQUALS_SIGN"], "NAME=value"),
        (["x", "--command", "true", "--cwd", "relative/dir"], "absolute path"),
        (["x", "--command", "true", "--isolation", "session", "--max-processes", "0"], "between 1 and"),
        (["x", "--command", "true", "--forward-identity"], "no identity to forward"),
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
    # Just added, no runner report yet: starting, not an alarm, and the page refreshes itself.
    assert ">starting<" in page and "not reported" not in page
    assert '<meta http-equiv="refresh"' in page
    listing = staff_client.get("/console/servers/").content.decode()
    assert "npx -y @modelcontextprotocol/server-filesystem" in listing and SECRET not in listing
    edit = staff_client.get("/console/servers/files/edit/").content.decode()
    assert SECRET not in edit and "API_KEY" in edit


def test_add_server_refuses_a_program_the_runner_cannot_find_and_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError, match=r"'uvx' is not on the PATH the stdio runner uses.*pip install uv"):
        _add("fetch", "--command", "uvx mcp-server-fetch")
    with pytest.raises(CommandError, match="not an executable file"):
        _add("local", "--command", "/nonexistent/bin/server --stdio")
    assert not UpstreamServer.objects.exists()
    # The runner's PATH for this server is its own --env PATH when it has one.
    _add("fetch", "--command", "true", "--env", "PATH=/usr/bin:/bin")
    # A runner elsewhere, with another PATH: the check is skipped on request.
    _add("remote", "--command", "uvx mcp-server-fetch", "--no-check-command")


def test_console_refuses_a_program_the_runner_cannot_find(staff_client, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    response = staff_client.post("/console/servers/add/", {
        "name": "fetch", "transport": "stdio", "command": "npx -y @modelcontextprotocol/server-everything",
        "isolation": "shared", "max_processes": "10",
    })
    assert response.status_code == 200
    assert "is not on the PATH the stdio runner uses" in response.content.decode()
    assert "Node.js" in response.content.decode()
    assert not UpstreamServer.objects.exists()


def _stdio_server(name: str = "files"):
    return create_server(name=name, url="", transport="stdio", actor="admin",
                         stdio=StdioSettings(command="svc --serve"))


def test_a_stdio_server_no_runner_reports_for_long_says_so_and_stops_refreshing(staff_client):
    server = _stdio_server()
    UpstreamServer.objects.filter(pk=server.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    page = staff_client.get("/console/servers/files/").content.decode()
    assert "not reported" in page and "is <code>gatehouse stdio_runner</code> running?" in page
    assert '<meta http-equiv="refresh"' not in page
    assert 'href="/console/servers/files/">Refresh</a>' in page  # works without JavaScript or meta


def test_the_tools_box_shows_the_runners_state_and_the_last_error_line(staff_client):
    from upstreams.models import StdioStatus

    server = _stdio_server()
    StdioStatus.objects.create(server=server, state="failed", restarts=3, reported_at=timezone.now(),
                               last_error="error: cannot find module '@acme/mcp'")
    page = staff_client.get("/console/servers/files/").content.decode()
    assert "the stdio runner reports it <strong>failed</strong>" in page
    assert "cannot find module &#x27;@acme/mcp&#x27;" in page
    assert '<meta http-equiv="refresh"' not in page
    StdioStatus.objects.filter(server=server).update(state="starting")
    page = staff_client.get("/console/servers/files/").content.decode()
    assert "reports it <strong>starting</strong>" in page and '<meta http-equiv="refresh"' in page


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
    # Just added: the runner picks it up within seconds, so "starting", as on its console page.
    assert body["stdio"]["env_names"] == ["API_KEY"] and body["stdio"]["state"] == "starting"
    assert SECRET not in repr(body)
    UpstreamServer.objects.filter(name="svc").update(updated_at=timezone.now() - timedelta(minutes=5))
    assert staff_client.get("/api/v1/servers/svc/").json()["stdio"]["state"] == "not reported"


def _fieldset(page: str, kind: str) -> str:
    start = page.index(f'data-transport-fields="{kind}"')
    return page[start:page.index("</fieldset>", start)]


def test_the_add_form_shows_only_the_chosen_transports_fields_without_javascript(staff_client):
    page = staff_client.get("/console/servers/add/").content.decode()
    # Streamable HTTP by default: its fields shown, the stdio ones hidden and disabled (never submitted).
    assert 'data-transport-fields="http">' in page
    assert 'data-transport-fields="stdio" hidden disabled>' in page
    assert 'name="url"' in _fieldset(page, "http") and 'name="command"' in _fieldset(page, "stdio")
    assert 'href="?transport=stdio"' in page
    page = staff_client.get("/console/servers/add/?transport=stdio").content.decode()
    assert 'data-transport-fields="http" hidden disabled>' in page
    assert 'data-transport-fields="stdio">' in page
    assert '<option value="stdio" selected>' in page
    assert "upstreams/transport_fields.js" in page  # switches fieldsets in place when scripts run


def test_a_post_for_another_transport_shows_that_transports_fields_with_the_error(staff_client):
    response = staff_client.post("/console/servers/add/", {"name": "x", "transport": "stdio"})
    page = response.content.decode()
    assert response.status_code == 200 and "needs a command" in page
    assert 'data-transport-fields="stdio">' in page


def test_the_edit_form_shows_the_servers_own_transport(staff_client):
    _stdio_server()
    page = staff_client.get("/console/servers/files/edit/").content.decode()
    assert 'data-transport-fields="stdio">' in page
    assert 'data-transport-fields="http" hidden disabled>' in page

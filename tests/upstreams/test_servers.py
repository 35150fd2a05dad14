"""Upstream server services: create, edit, disable; credentials encrypted and never audited."""

from __future__ import annotations

import pytest

from audit import events
from audit.models import AuditEvent
from core import encryption
from upstreams.exceptions import InvalidServerConfig
from upstreams.models import UpstreamServer
from upstreams.selectors import server_list
from upstreams.services import create_server, set_server_enabled, update_server


@pytest.fixture
def server(db):
    return create_server(
        name="demo",
        url="http://127.0.0.1:9/mcp",
        headers={"Authorization": "Bearer first-secret", "X-Team": "blue-secret"},
        actor="admin",
    )


def _headers(server: UpstreamServer) -> dict[str, str]:
    server.refresh_from_db()
    return encryption.decrypt_json(server.headers_encrypted)


def test_created_server_keeps_headers_encrypted_at_rest(server):
    assert "first-secret" not in server.headers_encrypted
    assert _headers(server) == {"Authorization": "Bearer first-secret", "X-Team": "blue-secret"}


def test_creation_is_audited_with_header_names_only(server):
    row = AuditEvent.objects.get(event=events.SERVER_CREATED)
    assert row.server == "demo" and row.actor == "admin"
    assert row.detail["header_names"] == ["Authorization", "X-Team"]
    assert "secret" not in repr(row.detail)


def test_credentials_in_the_url_never_reach_the_audit_log(db):
    create_server(name="withcreds", url="https://bot:pa55word@up.example/mcp?api_key=k3y", actor="admin")
    detail = repr(AuditEvent.objects.get(event=events.SERVER_CREATED).detail)
    assert "pa55word" not in detail and "k3y" not in detail
    assert "up.example/mcp" in detail


def test_edit_replaces_and_removes_headers_case_insensitively(server):
    update_server(
        server=server, set_headers={"authorization": "Bearer second-secret"}, remove_headers=["x-team"],
        actor="admin",
    )
    assert _headers(server) == {"authorization": "Bearer second-secret"}
    row = AuditEvent.objects.filter(event=events.SERVER_UPDATED).get()
    assert row.detail["changed"] == ["headers"]
    assert row.detail["headers_set"] == ["authorization"]
    assert row.detail["headers_removed"] == ["X-Team"]
    assert "secret" not in repr(row.detail)


def test_edit_changes_url_and_transport(server):
    update_server(server=server, url="http://127.0.0.1:9/sse", transport="sse", actor="admin")
    server.refresh_from_db()
    assert (server.url, server.transport) == ("http://127.0.0.1:9/sse", "sse")
    assert _headers(server)["X-Team"] == "blue-secret"  # untouched
    assert AuditEvent.objects.get(event=events.SERVER_UPDATED).detail["changed"] == ["url", "transport"]


def test_an_edit_that_changes_nothing_is_not_audited(server):
    update_server(server=server, url=server.url, actor="admin")
    assert not AuditEvent.objects.filter(event=events.SERVER_UPDATED).exists()


def test_disable_and_enable_are_audited(server):
    set_server_enabled(server=server, enabled=False, actor="admin")
    set_server_enabled(server=server, enabled=False, actor="admin")  # no-op
    set_server_enabled(server=server, enabled=True, actor="admin")
    details = [r.detail for r in AuditEvent.objects.filter(event=events.SERVER_UPDATED).order_by("id")]
    assert details == [{"changed": ["enabled"], "enabled": False}, {"changed": ["enabled"], "enabled": True}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "Demo"},
        {"name": "has space"},
        {"name": "-leading"},
        {"url": "ftp://x.example/mcp"},
        {"url": "/relative/mcp"},
        {"url": "http://x.example/mcp#frag"},
        {"transport": "websocket"},
        {"headers": {"Bad Name": "x"}},
        {"headers": {"Content-Length": "1"}},
        {"headers": {"X-Ok": "line\r\nInjected: yes"}},
        {"headers": {"X-Empty": ""}},
    ],
)
def test_invalid_configuration_is_refused(db, kwargs):
    arguments = {"name": "demo", "url": "http://127.0.0.1:9/mcp", "actor": "admin"} | kwargs
    with pytest.raises(InvalidServerConfig):
        create_server(**arguments)
    assert not UpstreamServer.objects.exists()


def test_tld_less_hosts_are_accepted(db):
    assert create_server(name="compose", url="http://everything:3001/mcp", actor="admin").url.endswith("/mcp")


def test_server_list_shows_header_names_but_not_values(server):
    (summary,) = server_list()
    assert summary.header_names == ["Authorization", "X-Team"]
    assert "secret" not in repr(summary.header_names) + summary.display_url

"""Credentials typed into an upstream URL are encrypted at rest like header values.

``url`` keeps only the redacted form (what pages, the API and audit rows show); the whole URL is
in ``url_encrypted`` and only ``target_url`` (what the gateway dials) reads it back.
"""

from __future__ import annotations

import importlib

from django.db import connection
from django.db.migrations.loader import MigrationLoader

from upstreams.models import UpstreamServer
from upstreams.services import create_server, update_server

SECRET_URL = "https://bot:pa55word-77@up.example/mcp?api_key=k3y-secret-88&tenant=blue"
SHOWN_URL = "https://bot:***@up.example/mcp?api_key=***&tenant=***"


def _stored_row(name: str) -> str:
    """Every column of the server's row as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tokens_upstreamserver WHERE name = %s", [name])
        return repr(cursor.fetchone())


def test_url_credentials_are_stored_encrypted_only(db):
    server = create_server(name="withcreds", url=SECRET_URL, actor="admin")
    row = _stored_row("withcreds")
    assert "pa55word-77" not in row and "k3y-secret-88" not in row
    assert SHOWN_URL in row
    server.refresh_from_db()
    assert server.url == SHOWN_URL
    assert server.target_url == SECRET_URL


def test_a_url_without_credentials_is_stored_as_typed(db):
    server = create_server(name="plain", url="http://127.0.0.1:3001/mcp", actor="admin")
    server.refresh_from_db()
    assert (server.url, server.url_encrypted) == ("http://127.0.0.1:3001/mcp", "")
    assert server.target_url == "http://127.0.0.1:3001/mcp"


def test_editing_other_fields_keeps_the_encrypted_url(db):
    server = create_server(name="withcreds", url=SECRET_URL, actor="admin")
    update_server(server=server, description="moved to the blue tenant", actor="admin")
    server.refresh_from_db()
    assert server.target_url == SECRET_URL and server.description == "moved to the blue tenant"


def test_a_new_url_without_credentials_drops_the_old_ones(db):
    server = create_server(name="withcreds", url=SECRET_URL, actor="admin")
    update_server(server=server, url="https://up.example/mcp", actor="admin")
    server.refresh_from_db()
    assert (server.url, server.url_encrypted) == ("https://up.example/mcp", "")
    assert server.target_url == "https://up.example/mcp"


def test_the_migration_seals_urls_saved_before_it(db):
    server = create_server(name="legacy", url="http://127.0.0.1:3001/mcp", actor="admin")
    # A row as an older Gatehouse wrote it: credentials in plain text in ``url``.
    UpstreamServer.objects.filter(pk=server.pk).update(url=SECRET_URL, url_encrypted="")
    name = "0003_upstream_url_credentials_encrypted"
    migration = importlib.import_module(f"tokens.migrations.{name}")
    # The models as the migration sees them (no custom save), as ``migrate`` would run it.
    historical = MigrationLoader(connection).project_state(("tokens", name)).apps

    migration.seal_urls(historical, None)
    assert "pa55word-77" not in _stored_row("legacy")
    server.refresh_from_db()
    assert server.target_url == SECRET_URL

    migration.unseal_urls(historical, None)
    server.refresh_from_db()
    assert (server.url, server.url_encrypted) == (SECRET_URL, "")

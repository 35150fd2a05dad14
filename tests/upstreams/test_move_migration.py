"""Moving ``UpstreamServer`` from ``tokens`` to ``upstreams`` loses nothing and can be undone.

The move is state-only (the table keeps its name), so a server saved before it, with its encrypted
credentials and a session bound to it, reads the same after it; and migrating back gives the old
app its model again. Runs on both passes (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core import encryption
from upstreams.models import UpstreamServer
from upstreams.target import target_of

BEFORE = [
    ("tokens", "0003_upstream_url_credentials_encrypted"),
    ("gateway", "0003_longer_upstream_session_ids"),
]


def _migrate(targets: list[tuple[str, str | None]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def _apps_before():
    return MigrationExecutor(connection).loader.project_state(BEFORE).apps


def _latest() -> list[tuple[str, str | None]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def before_the_move(transactional_db) -> Iterator[object]:
    """The schema as it was before the move; puts every app back on its latest migration after."""
    _migrate([("upstreams", None), *BEFORE])
    yield _apps_before()
    _migrate(_latest())


def test_a_server_saved_before_the_move_reads_the_same_after_it(before_the_move):
    OldServer = before_the_move.get_model("tokens", "UpstreamServer")
    old = OldServer.objects.create(
        name="legacy-box", url="http://127.0.0.1:9/mcp", transport="sse",
        headers_encrypted=encryption.encrypt_json({"Authorization": "Bearer upstream-secret"}),
    )
    User = before_the_move.get_model("auth", "User")
    Token = before_the_move.get_model("tokens", "Token")
    Session = before_the_move.get_model("gateway", "SessionBinding")
    owner = User.objects.create(username="owner")
    now = timezone.now()
    token = Token.objects.create(jti="j" * 32, name="t", owner=owner, scope={"legacy-box": None},
                                 display_prefix="gth_jjjj", created_at=now)
    Session.objects.create(id="s" * 40, token=token, server=old, last_seen_at=now, transport="sse")

    _migrate(_latest())

    server = UpstreamServer.objects.get(name="legacy-box")
    assert server.pk == old.pk
    assert server.client_path == "/sse/legacy-box/"
    assert dict(target_of(server).headers) == {"Authorization": "Bearer upstream-secret"}
    assert server.sessions.get().id == "s" * 40
    from django.contrib.contenttypes.models import ContentType

    assert ContentType.objects.get_for_model(UpstreamServer).app_label == "upstreams"


def test_migrating_back_gives_tokens_its_model_and_the_row(transactional_db):
    server = UpstreamServer.objects.create(name="kept", url="http://127.0.0.1:9/mcp")
    try:
        _migrate([("upstreams", None), *BEFORE])
        OldServer = _apps_before().get_model("tokens", "UpstreamServer")
        assert OldServer.objects.get(name="kept").pk == server.pk
    finally:
        _migrate(_latest())
    assert UpstreamServer.objects.get(name="kept").pk == server.pk

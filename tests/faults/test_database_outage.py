"""PostgreSQL goes away under a running Gatehouse.

- REST API call while the database is unreachable: JSON 503 ``database_unavailable`` with
  ``Retry-After``, no HTML page, no traceback, nothing minted; a console page: a 503 page.
  Recovery: the first call after the database is back succeeds.
- A management command meanwhile: one line on stderr, exit 1, no traceback, no database URL.
  Recovery: the same command works once the database is back.

The outage is real but private to the test: Gatehouse reaches PostgreSQL through a TCP proxy the
test cuts (``tests.support.tcp_proxy``); every other test keeps its database. SQLite has no
server to lose, so this runs on the PostgreSQL pass.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from django.db import connection

from tests.factories import UpstreamServerFactory, UserFactory
from tests.support.processes import REPO_ROOT
from tokens.api_keys import create_api_key
from tokens.models import Token

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite is a file: there is no server to lose"
    ),
]


def _api_key() -> str:
    UpstreamServerFactory(name="demo")
    created = create_api_key(name="ci", owner=UserFactory(username="ci-bot"), scope_ceiling=None,
                             max_ttl=timedelta(hours=1), actor="tests")
    return created.secret


def test_the_api_answers_json_503_while_the_database_is_down_and_recovers(
    database_outage,
):
    outage = database_outage
    headers = {"Authorization": f"Bearer {_api_key()}"}
    assert httpx.get(f"{outage.url}/api/v1/tokens/", headers=headers).status_code == 200

    outage.proxy.cut()
    down = httpx.post(f"{outage.url}/api/v1/tokens/", headers=headers,
                      json={"name": "during-outage", "servers": ["demo"], "ttl": "10m"})
    assert down.status_code == 503
    assert down.headers["content-type"].startswith("application/json")
    assert int(down.headers["retry-after"]) > 0
    assert down.json()["error"] == "database_unavailable"
    assert "Traceback" not in down.text
    # A console page needs the database for the signed-in user: a 503 page, not Django's 500.
    page = httpx.get(f"{outage.url}/console/", cookies={"sessionid": "s" * 32})
    assert page.status_code == 503
    assert "cannot reach its database" in page.text

    outage.proxy.restore()
    assert not Token.objects.filter(name="during-outage").exists()
    minted = httpx.post(f"{outage.url}/api/v1/tokens/", headers=headers,
                        json={"name": "after-outage", "servers": ["demo"], "ttl": "10m"})
    assert minted.status_code == 201, minted.text


def test_a_command_prints_one_clear_line_while_the_database_is_down(database_outage):
    outage = database_outage
    outage.proxy.cut()
    result = subprocess.run(
        [sys.executable, "manage.py", "revoke_token", "gth_nothing"], cwd=REPO_ROOT, env=outage.env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "database is unavailable" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert str(outage.proxy.port) not in result.stderr  # the URL (which may carry a password) is not printed

    outage.proxy.restore()
    result = subprocess.run(
        [sys.executable, "manage.py", "revoke_token", "gth_nothing"], cwd=REPO_ROOT, env=outage.env,
        capture_output=True, text=True, timeout=60,
    )
    assert "database is unavailable" not in result.stderr

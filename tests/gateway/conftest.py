"""Gateway test fixtures: a live gateway wired to real upstream MCP servers.

- ``gw``: the live gateway (daphne) plus ``demo`` (Streamable HTTP upstream) and ``demo-sse``
  (legacy SSE upstream) registered, and ``gw.token(scope)`` to issue real tokens.
- ``strict_gateway``: a second daphne with tiny limits (rate, body size, upstream timeout) for
  the refusal tests, sharing the same test database.
- ``supergateway_bin``: the npm ``supergateway`` CLI (``npm ci --prefix tests/clients`` on demand).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.fixtures import LiveServer
from tests.support.processes import REPO_ROOT, free_port, running, serve_args, subprocess_env
from tokens.services import IssuedToken


@dataclass
class Gateway:
    url: str
    upstream: str
    upstream_sse: str
    make_token: object
    server_log: LiveServer | None = None

    def mcp(self, server: str = "demo") -> str:
        return f"{self.url}/mcp/{server}/"

    def sse(self, server: str = "demo-sse") -> str:
        return f"{self.url}/sse/{server}/"

    def token(
        self, scope: dict | None = None, *, ttl: timedelta = timedelta(hours=1), name: str = "gw-test"
    ) -> IssuedToken:
        return self.make_token(scope or {"demo": None}, ttl=ttl, name=name)  # type: ignore[operator]


@pytest.fixture
def gw(
    live_gateway, transactional_db, upstream_mcp, upstream_mcp_sse, register_upstream, make_token
) -> Gateway:
    register_upstream(name="demo", url=upstream_mcp)
    register_upstream(name="demo-sse", url=upstream_mcp_sse, transport="sse")
    return Gateway(
        url=live_gateway.url,
        upstream=upstream_mcp,
        upstream_sse=upstream_mcp_sse,
        make_token=make_token,
        server_log=live_gateway,
    )


STRICT_ENV = {
    "GATEHOUSE_TOKEN_RATE": "5/h",  # an hour window: tests/support/clock.py
    "GATEHOUSE_MAX_BODY_BYTES": "2048",
    "GATEHOUSE_UPSTREAM_TIMEOUT_SECONDS": "1",
}


@pytest.fixture(scope="session")
def strict_gateway(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    """A gateway with a 5/h token rate, a 2 KiB body limit and a 1 s upstream timeout."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne-strict") / "daphne.log"
    with django_db_blocker.unblock():
        env = subprocess_env(STRICT_ENV)
    with running(serve_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path)


CLIENTS_DIR = REPO_ROOT / "tests" / "clients"


@pytest.fixture(scope="session")
def supergateway_bin() -> Path:
    """The pinned supergateway CLI; installs tests/clients with ``npm ci`` when it is missing."""
    binary = CLIENTS_DIR / "node_modules" / ".bin" / "supergateway"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is required for the supergateway tests (install Node.js 18+).")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(CLIENTS_DIR)], check=True, timeout=300
        )
    return binary

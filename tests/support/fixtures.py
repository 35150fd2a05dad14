"""Pytest fixtures for live servers; registered as a plugin by tests/conftest.py.

Upstream MCP servers (``tests.support.upstream``, the official SDK; tools ``echo``, ``add``,
``slow_progress``, ``request_info``/``whoami``, ``request_log``, ``secret_tool``):

- ``upstream_mcp`` (session): Streamable HTTP upstream; yields its endpoint URL ``http://127.0.0.1:N/mcp``.
- ``upstream_mcp_sse`` (session): legacy HTTP+SSE upstream; yields its SSE URL ``http://127.0.0.1:N/sse``.
- ``register_upstream`` (function): ``register_upstream(name="demo", url=upstream_mcp,
  transport="streamable", headers={...}, forward_identity=False, identity_header="Authorization")``
  creates or updates the ``UpstreamServer`` row (headers encrypted at rest) and returns it.
  Needs database access (``db`` or ``transactional_db``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port, running, serve_args, subprocess_env


@dataclass(frozen=True)
class LiveServer:
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def live_gateway(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    """Gatehouse started the documented way (``manage.py serve``), sharing the test database.

    Use with ``transactional_db``.
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with django_db_blocker.unblock():
        env = subprocess_env()
    with running(serve_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path)


def _run_upstream(tmp_path_factory: pytest.TempPathFactory, transport: str) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp(f"upstream-{transport}") / "upstream.log"
    args = [sys.executable, "-m", "tests.support.upstream", "--port", str(port), "--transport", transport]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with running(args, env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"


@pytest.fixture(scope="session")
def upstream_mcp(tmp_path_factory) -> Iterator[str]:
    """A real Streamable HTTP MCP server (official SDK); yields its endpoint URL."""
    yield from _run_upstream(tmp_path_factory, "streamable")


@pytest.fixture(scope="session")
def upstream_mcp_sse(tmp_path_factory) -> Iterator[str]:
    """A real legacy HTTP+SSE MCP server (official SDK); yields its SSE URL."""
    yield from _run_upstream(tmp_path_factory, "sse")


@pytest.fixture
def register_upstream() -> Callable[..., object]:
    """Create or repoint an ``UpstreamServer``: ``register_upstream(name=, url=, transport=, headers=)``."""
    from core import encryption
    from upstreams.models import UpstreamServer

    def _register(*, name: str = "demo", url: str, transport: str = "streamable",
                  headers: dict[str, str] | None = None, forward_identity: bool = False,
                  identity_header: str = "Authorization") -> UpstreamServer:
        server, _ = UpstreamServer.objects.update_or_create(
            name=name,
            defaults={
                "url": url,
                "transport": transport,
                "headers_encrypted": encryption.encrypt_json(headers or {}),
                "enabled": True,
                "forward_identity": forward_identity,
                "identity_header": identity_header,
            },
        )
        return server

    return _register

"""Fixtures for stdio servers: a live stdio runner, a gateway that dials it, and registration.

- ``stdio_gateway`` (session): ``manage.py stdio_runner`` and ``manage.py serve`` started the
  documented way, sharing the test database, the gateway pointed at the runner
  (``GATEHOUSE_STDIO_RUNNER_URL``); this test process points there too (its sweeps DELETE
  sessions on the runner). Use with ``transactional_db``.
- ``register_stdio(name, *args, env=, isolation=, max_processes=, command=)``: registers a stdio
  server running ``tests.support.stdio_server`` (or ``command``) through the service (environment
  encrypted) and waits until the runner reports it in the wanted state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings

from tests.support.fixtures import LiveServer
from tests.support.polling import eventually
from tests.support.processes import free_port, running, serve_args, subprocess_env

STDIO_SERVER = [sys.executable, "-m", "tests.support.stdio_server"]


@dataclass(frozen=True)
class StdioGateway:
    url: str
    runner: LiveServer
    gateway: LiveServer

    def mcp(self, server: str) -> str:
        return f"{self.url}/mcp/{server}/"


def runner_args(port: int) -> list[str]:
    return [sys.executable, "manage.py", "stdio_runner", "--bind", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="session")
def stdio_gateway(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[StdioGateway]:
    runner_port, gateway_port = free_port(), free_port()
    runner_url = f"http://127.0.0.1:{runner_port}"
    logs = tmp_path_factory.mktemp("stdio")
    with django_db_blocker.unblock():
        env = subprocess_env({"GATEHOUSE_STDIO_RUNNER_URL": runner_url})
    previous = settings.STDIO_RUNNER_URL
    settings.STDIO_RUNNER_URL = runner_url
    try:
        with running(runner_args(runner_port), env=env, ready_url=f"{runner_url}/health",
                     log_path=logs / "runner.log") as _, running(
            serve_args(gateway_port), env=env, ready_url=f"http://127.0.0.1:{gateway_port}/health",
            log_path=logs / "daphne.log",
        ):
            yield StdioGateway(
                url=f"http://127.0.0.1:{gateway_port}",
                runner=LiveServer(url=runner_url, log_path=logs / "runner.log"),
                gateway=LiveServer(url=f"http://127.0.0.1:{gateway_port}", log_path=logs / "daphne.log"),
            )
    finally:
        settings.STDIO_RUNNER_URL = previous


def wait_for_state(name: str, states: tuple[str, ...], *, timeout: float = 30.0,
                   where: Callable[[Any], bool] = lambda status: True) -> object:
    """The ``StdioStatus`` of ``name`` once the runner reports one of ``states`` (and ``where`` holds).

    The runner reports every few seconds, so a row already in the wanted state may still be the
    report from before the event a test caused: ``where`` waits for the report that shows it.
    """
    from upstreams.models import StdioStatus

    def report() -> Any:
        status = StdioStatus.objects.filter(server__name=name).first()
        return status if status is not None and status.state in states and where(status) else None

    def last_report() -> str:
        status = StdioStatus.objects.filter(server__name=name).first()
        last = status and (status.state, status.last_error)
        return f"stdio server {name} to reach {states}; last report: {last}"

    return eventually(report, timeout=timeout, every=0.1, what=last_report)


@pytest.fixture
def register_stdio(stdio_gateway, transactional_db) -> Callable[..., object]:
    from upstreams import services

    def _register(name: str, *args: str, env: dict[str, str] | None = None, isolation: str = "shared",
                  max_processes: int = 10, wait_for: tuple[str, ...] | None = None,
                  command: str | None = None) -> object:
        command = command or " ".join([*STDIO_SERVER, *args])
        server = services.create_server(
            name=name, url="", transport="stdio", actor="tests",
            stdio=services.StdioSettings(
                command=command, env=env or {}, cwd=str(settings.BASE_DIR), isolation=isolation,
                max_processes=max_processes,
            ),
        )
        default = ("running",) if isolation == "shared" else ("idle",)
        wait_for_state(name, wait_for or default)
        return server

    return _register

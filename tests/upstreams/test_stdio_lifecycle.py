"""The stdio runner's processes never outlive it: stopped with it, killed with it, followed on edits.

Each test runs its own ``manage.py stdio_runner`` (no gateway: the test speaks to the runner
with its key, as a gateway instance does).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

import anyio
import pytest
from django.conf import settings

from tests.gateway.drivers import sdk_client
from tests.support.processes import free_port, running, subprocess_env
from tests.support.stdio_runner import STDIO_SERVER, runner_args, wait_for_state
from tests.upstreams.test_stdio_runner import _alive, _wait_gone
from upstreams import services
from upstreams.models import UpstreamServer
from upstreams.stdio.command import RUNNER_KEY_HEADER

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def runner(tmp_path) -> Iterator[tuple[str, object]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(runner_args(port), env=subprocess_env(), ready_url=f"{url}/health",
                 log_path=tmp_path / "runner.log") as process:
        yield url, process


def _add(name: str, *, isolation: str = "shared", env: dict[str, str] | None = None) -> None:
    services.create_server(
        name=name, url="", transport="stdio", actor="tests",
        stdio=services.StdioSettings(
            command=" ".join(STDIO_SERVER), env=env or {}, cwd=str(settings.BASE_DIR), isolation=isolation
        ),
    )


def _pids(runner_url: str, server: str, sessions: int) -> list[int]:
    """Open ``sessions`` sessions on the runner (left open) and return the pid each one sees."""
    url = f"{runner_url}/servers/{server}/mcp"
    headers = {RUNNER_KEY_HEADER: settings.STDIO_RUNNER_KEY}
    pids: list[int] = []

    async def run() -> None:
        for _ in range(sessions):
            async with sdk_client(url, headers=headers, mode="legacy") as client:
                pids.append(int((await client.call_tool("pid", {})).content[0].text))

    anyio.run(run)
    return pids


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_process_outlives_the_runner(runner, how):
    url, process = runner
    _add("shared")
    _add("isolated", isolation="session")
    wait_for_state("shared", ("running",))
    wait_for_state("isolated", ("idle",))
    shared_pid = _pids(url, "shared", 1)[0]
    # A session-isolated process lives as long as its session; keep one open while stopping.
    held: list[int] = []

    async def hold_session_and_stop() -> None:
        headers = {RUNNER_KEY_HEADER: settings.STDIO_RUNNER_KEY}
        async with sdk_client(f"{url}/servers/isolated/mcp", headers=headers, mode="legacy") as client:
            held.append(int((await client.call_tool("pid", {})).content[0].text))
            process.send_signal(how)
            await anyio.to_thread.run_sync(process.wait, 15)

    with contextlib.suppress(Exception):  # the client's session may die loudly with the runner
        anyio.run(hold_session_and_stop)
    assert held and _alive(held[0]) is not None
    _wait_gone(held[0])
    _wait_gone(shared_pid)
    if how == signal.SIGTERM:
        assert process.returncode == 0


def test_a_changed_command_restarts_with_the_new_environment(runner):
    url, _ = runner
    _add("edited", env={"GREETING": "before"})
    wait_for_state("edited", ("running",))
    pid = _pids(url, "edited", 1)[0]
    server = UpstreamServer.objects.get(name="edited")
    changes = services.StdioChanges(set_env={"GREETING": "after"})
    services.update_server(server=server, actor="tests", stdio=changes)
    _wait_gone(pid)
    wait_for_state("edited", ("running",))
    headers = {RUNNER_KEY_HEADER: settings.STDIO_RUNNER_KEY}

    async def greeting() -> str:
        async with sdk_client(f"{url}/servers/edited/mcp", headers=headers, mode="legacy") as client:
            return (await client.call_tool("environment", {"name": "GREETING"})).content[0].text

    def answered() -> str | None:
        # Until the runner has started the new process (its state row can still say "running" for
        # the old one), a call may find no server there and fail: that is "not yet", not an error.
        try:
            return anyio.run(greeting)
        except Exception:
            return None

    deadline = time.monotonic() + 10
    while answered() != "after":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_disabling_a_server_stops_its_process(runner):
    url, _ = runner
    _add("disabled")
    wait_for_state("disabled", ("running",))
    pid = _pids(url, "disabled", 1)[0]
    server = UpstreamServer.objects.get(name="disabled")
    services.set_server_enabled(server=server, enabled=False, actor="tests")
    _wait_gone(pid)

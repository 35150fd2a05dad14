"""stdio servers behind the gateway, end to end: the real runner, the real gateway, SDK clients.

The stdio server is ``tests.support.stdio_server`` (official SDK, stdio transport), registered
as ``add_server --command`` would, hosted by ``manage.py stdio_runner`` and reached only through
``manage.py serve`` with a Gatehouse token.
"""

from __future__ import annotations

import json
import os
import signal
import time

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from gateway.services import expire_sessions
from tests.gateway.conftest import CLIENTS_DIR
from tests.gateway.drivers import sdk_client
from tests.support.polling import eventually
from tests.support.stdio_runner import wait_for_state
from tokens.services import revoke_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"},
    },
}


def _alive(pid: int) -> bool:
    # A zombie is gone for our purposes (its parent has not reaped it yet). The process can
    # also be reaped between any two of these steps: opening its stat file then fails with
    # FileNotFoundError, and reading one already open with ProcessLookupError (ESRCH).
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    eventually(lambda: not _alive(pid), timeout=timeout, every=0.05, what=f"process {pid} to end")


async def _pid(url: str, token: str) -> int:
    async with sdk_client(url, token=token) as client:
        return int((await client.call_tool("pid", {})).content[0].text)


def test_tools_list_call_and_environment_through_the_gateway(stdio_gateway, register_stdio, make_token):
    register_stdio("tools", env={"TOOL_API_KEY": "s3cr3t-value-42"})
    token = make_token({"tools": ["echo", "environment", "pid"]})

    async def run() -> None:
        async with sdk_client(stdio_gateway.mcp("tools"), token=token.secret) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == {"echo", "environment", "pid"}  # filtered to the token's scope
            assert (await client.call_tool("echo", {"text": "hello"})).content[0].text == "hello"
            env = await client.call_tool("environment", {"name": "TOOL_API_KEY"})
            assert env.content[0].text == "s3cr3t-value-42"
            with pytest.raises(MCPError, match="secret_tool"):
                await client.call_tool("secret_tool", {})

    anyio.run(run)
    # The environment value is a secret: not in the runner's log, the gateway's, or the audit log.
    assert "s3cr3t-value-42" not in stdio_gateway.runner.log()
    assert "s3cr3t-value-42" not in stdio_gateway.gateway.log()
    from audit.models import AuditEvent

    assert not any("s3cr3t-value-42" in str(e.detail) for e in AuditEvent.objects.all())


def test_progress_arrives_as_it_is_sent(stdio_gateway, register_stdio, make_token):
    register_stdio("progress")
    token = make_token({"progress": None})
    arrivals: list[float] = []
    finished: list[float] = []

    async def run() -> str:
        async with sdk_client(stdio_gateway.mcp("progress"), token=token.secret) as client:
            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                arrivals.append(time.monotonic())

            result = await client.call_tool(
                "slow_progress", {"steps": 4, "delay": 0.4}, progress_callback=on_progress
            )
            finished.append(time.monotonic())
            return result.content[0].text

    assert anyio.run(run) == "done 4"
    assert len(arrivals) == 4
    # Unbuffered: the reports (sent 0.4 s apart, the last 0.4 s before the answer) are spread over
    # the call, not delivered together at its end. Relative times only: four processes share the box.
    assert finished[0] - arrivals[0] > 0.9 and arrivals[-1] - arrivals[0] > 0.6


def test_kill_9_mid_call_gives_a_clear_error_and_the_next_call_works(
    stdio_gateway, register_stdio, make_token
):
    register_stdio("crashy")
    token = make_token({"crashy": None})

    async def run() -> tuple[int, int, str]:
        async with sdk_client(stdio_gateway.mcp("crashy"), token=token.secret) as client:
            pid = int((await client.call_tool("pid", {})).content[0].text)
            error = ""
            running = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                running.set()

            async with anyio.create_task_group() as tg:
                async def kill_mid_call() -> None:
                    await running.wait()  # the call has reached the process: kill it under the call
                    os.kill(pid, signal.SIGKILL)

                tg.start_soon(kill_mid_call)
                with anyio.fail_after(30):
                    try:
                        await client.call_tool(
                            "slow_progress", {"steps": 50, "delay": 0.2}, progress_callback=on_progress
                        )
                    except MCPError as exc:
                        error = str(exc)
                tg.cancel_scope.cancel()  # a call that never reported progress leaves no killer behind
            after = int((await client.call_tool("pid", {})).content[0].text)  # same session, new process
            return pid, after, error

    pid, after, error = anyio.run(run)
    assert "exited during this request" in error and "crashy" in error
    assert after != pid and _alive(after)
    # The console counts the restart once the runner's next report arrives (every 4 s).
    status = wait_for_state("crashy", ("running",), where=lambda status: status.restarts >= 1)
    assert status.restarts == 1  # type: ignore[attr-defined]


def test_session_isolation_gives_each_session_its_own_process(stdio_gateway, register_stdio, make_token):
    register_stdio("isolated", isolation="session")
    token = make_token({"isolated": None})
    url = stdio_gateway.mcp("isolated")

    async def run() -> tuple[int, int, list[str], list[str]]:
        async with sdk_client(url, token=token.secret) as one, sdk_client(url, token=token.secret) as two:
            await one.call_tool("remember", {"text": "only in one"})
            pid_one = int((await one.call_tool("pid", {})).content[0].text)
            pid_two = int((await two.call_tool("pid", {})).content[0].text)
            recall_one = (await one.call_tool("recall", {})).structured_content["result"]
            recall_two = (await two.call_tool("recall", {})).structured_content["result"]
            return pid_one, pid_two, recall_one, recall_two

    pid_one, pid_two, recall_one, recall_two = anyio.run(run)
    assert pid_one != pid_two
    assert recall_one == ["only in one"] and recall_two == []
    # Leaving the client block DELETEs each session: their processes end with them.
    _wait_gone(pid_one)
    _wait_gone(pid_two)


def test_over_max_processes_a_new_session_gets_503_with_a_json_body(
    stdio_gateway, register_stdio, make_token
):
    register_stdio("capped", isolation="session", max_processes=1)
    token = make_token({"capped": None})
    headers = {**HEADERS, "authorization": f"Bearer {token.secret}"}
    url = stdio_gateway.mcp("capped")
    with httpx.Client(timeout=30) as http:
        # An initialize the runner refuses (no event-stream in Accept) takes no process slot.
        refused = http.post(url, json=INITIALIZE, headers={**headers, "accept": "application/json"})
        assert refused.status_code == 406 and "Accept" in refused.json()["error"]["message"]
        first = http.post(url, json=INITIALIZE, headers=headers)
        assert first.status_code == 200, first.text
        second = http.post(url, json=INITIALIZE, headers=headers)
        assert second.status_code == 503
        assert second.headers["content-type"].startswith("application/json")
        error = second.json()["error"]
        assert "max processes 1" in error["message"]
        # Ending the first session frees the slot.
        session = first.headers["mcp-session-id"]
        assert http.delete(url, headers={**headers, "mcp-session-id": session}).status_code in (200, 204)
        third = http.post(url, json=INITIALIZE, headers=headers)
        assert third.status_code == 200, third.text


def test_revoking_the_token_ends_its_session_process(stdio_gateway, register_stdio, make_token):
    register_stdio("revocable", isolation="session")
    token = make_token({"revocable": None})
    pid_box: list[int] = []

    async def run() -> None:
        async with sdk_client(stdio_gateway.mcp("revocable"), token=token.secret) as client:
            pid_box.append(int((await client.call_tool("pid", {})).content[0].text))
            await anyio.to_thread.run_sync(lambda: revoke_token(token=token.token, actor="tests"))
            # The sweep (Celery beat in production) ends the token's sessions and DELETEs them
            # on the runner, which kills the session's process.
            swept = await anyio.to_thread.run_sync(expire_sessions)
            assert [ended.status for ended in swept.ended] == ["revoked"]
            await anyio.to_thread.run_sync(_wait_gone, pid_box[0])
            with pytest.raises(Exception):  # noqa: B017 - the client sees the 401 however it wraps it
                await client.call_tool("pid", {})

    anyio.run(run)


def test_a_command_that_exits_at_once_shows_failed_with_its_stderr_line(
    stdio_gateway, register_stdio, make_token, admin_client
):
    register_stdio(
        "broken", "--exit-at-once", "'fatal: bad API key $API_KEY'",
        env={"API_KEY": "abcd-secret-9"}, wait_for=("failed",),
    )
    status = wait_for_state("broken", ("failed",))
    assert status.last_error == "fatal: bad API key ***"  # type: ignore[attr-defined]
    page = admin_client.get("/console/servers/broken/").content.decode()
    assert "failed" in page and "fatal: bad API key ***" in page
    assert "abcd-secret-9" not in page
    ready = admin_client.get("/ready").json()
    assert ready["stdio"]["broken"] == "failed"
    # A client gets the reason at once, as a JSON-RPC error.
    token = make_token({"broken": None})
    headers = {**HEADERS, "authorization": f"Bearer {token.secret}"}
    answer = httpx.post(stdio_gateway.mcp("broken"), json=INITIALIZE, headers=headers, timeout=30)
    assert "failed to start: fatal: bad API key ***" in answer.text
    assert "abcd-secret-9" not in stdio_gateway.runner.log()


def test_the_runner_answers_only_requests_with_its_key(stdio_gateway, register_stdio):
    register_stdio("keyed")
    url = f"{stdio_gateway.runner.url}/servers/keyed/mcp"
    for key in (None, "wrong"):
        headers = dict(HEADERS) | ({"x-gatehouse-runner-key": key} if key else {})
        answer = httpx.post(url, json=INITIALIZE, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"


def test_a_stdio_server_from_npm_works_as_it_would_for_claude_desktop(
    stdio_gateway, register_stdio, make_token, tmp_path
):
    """The reference filesystem server (TypeScript SDK, from npm): stricter than the Python SDK
    about JSON-RPC (a ``"params": null`` request goes unanswered), so this catches what the
    Python test server forgives."""
    entry = CLIENTS_DIR / "node_modules" / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
    assert entry.exists(), "run make test-clients (npm ci --prefix tests/clients)"
    (tmp_path / "note.txt").write_text("hello from a file")
    register_stdio("files", command=f"node {entry} {tmp_path}", isolation="session")
    token = make_token({"files": ["read_text_file", "list_directory"]})

    async def run() -> tuple[set[str], str, str]:
        # A request the process leaves unanswered would hang the client: fail instead.
        with anyio.fail_after(30):
            return await calls()

    async def calls() -> tuple[set[str], str, str]:
        async with sdk_client(stdio_gateway.mcp("files"), token=token.secret) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            listing = await client.call_tool("list_directory", {"path": str(tmp_path)})
            note = await client.call_tool("read_text_file", {"path": str(tmp_path / "note.txt")})
            return tools, listing.content[0].text, note.content[0].text

    tools, listing, note = anyio.run(run)
    assert tools == {"read_text_file", "list_directory"}
    assert "note.txt" in listing and note == "hello from a file"


def test_a_cancelled_call_is_answered_cancelled_at_once(stdio_gateway, register_stdio, make_token):
    register_stdio("cancellable")
    token = make_token({"cancellable": None})
    url = stdio_gateway.mcp("cancellable")
    headers = {**HEADERS, "authorization": f"Bearer {token.secret}"}
    with httpx.Client(timeout=30) as http:
        opened = http.post(url, json=INITIALIZE, headers=headers)
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"],
                   "mcp-protocol-version": "2025-06-18"}
        http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)

    async def run() -> tuple[dict, float]:
        arguments = {"steps": 100, "delay": 0.2}
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "slow_progress", "arguments": arguments, "_meta": {"progressToken": "t"}}}
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", url, json=call, headers=session
        ) as stream:
            lines = stream.aiter_lines()
            async for line in lines:  # the first progress report: the call runs
                if line.startswith("data:") and "notifications/progress" in line:
                    break
            started = time.monotonic()
            assert (await http.post(url, json=cancel, headers=session)).status_code == 202
            with anyio.fail_after(5):
                async for line in lines:
                    if line.startswith("data:") and '"id":7' in line.replace(" ", ""):
                        return json.loads(line[5:]), time.monotonic() - started
        raise AssertionError("the stream ended without an answer to the cancelled call")

    answer, waited = anyio.run(run)
    assert answer["error"]["code"] == -32800 and waited < 2

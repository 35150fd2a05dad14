"""Started the documented way, the web process never writes a raw token, wherever it is sent.

A client that cannot set headers puts its token in the URL (``?key=gth_…``). Daphne's own access
log prints every raw URI, so daphne started with its defaults writes such tokens in clear; the one
documented start-up line, ``manage.py serve``, runs daphne without it, and Gatehouse's access log
masks the query string. Each start-up command the README and docs/ show runs here as written
(only the port is free-picked) on a fresh data dir, and every line it writes to stdout and stderr
is searched.
The last test runs bare daphne the same way and shows that the search does find a leak.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.gatehouse.test_readme import serve_commands
from tests.gatehouse.test_secrets_mask import fake_token
from tests.support.processes import REPO_ROOT, free_port, subprocess_env, wait_for_http

pytestmark = pytest.mark.integration

# Shaped like a real token: gth_ + an EdDSA JWT whose signature has the real length (86).
JTI = "leakcheckjti0001"
SIGNATURE = "LeakCheckSignature0123456789-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
TOKEN = fake_token(jti=JTI, signature=SIGNATURE)
MASKED = f"gth_{JTI[:8]}…"
# The token, or any part of it that would let someone use it.
SECRET_PARTS = (TOKEN, TOKEN.removeprefix("gth_"), SIGNATURE)
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "leak-check", "version": "1"}}}


@dataclass
class Output:
    """Everything a server wrote, once it has stopped."""

    stdout: str = ""
    stderr: str = ""

    def lines(self) -> list[tuple[str, str]]:
        return [(name, line) for name, text in (("stdout", self.stdout), ("stderr", self.stderr))
                for line in text.splitlines()]

    def access_log(self) -> list[dict]:
        return [entry for entry in (json.loads(line) for name, line in self.lines()
                                    if name == "stdout" and line.startswith("{"))
                if entry.get("logger") == "gatehouse.access"]


def as_run_here(command: str, port: int) -> list[str]:
    """A documented command line, run with this interpreter (its ``.venv/bin/python``) on ``port``;
    ``gatehouse`` is ``manage.py`` run by it (the command ``make install`` writes)."""
    args = command.split()
    if args[0] == "gatehouse":
        args[:1] = ["python", "manage.py"]
    assert args[0].endswith("python"), command
    args[0] = sys.executable
    if "--port" in args:
        args[args.index("--port") + 1] = str(port)
    return args


@pytest.fixture
def server_env(transactional_db, django_db_blocker, tmp_path):
    """The environment of a server on a fresh data dir: no key yet (it generates one), the test
    database (migrated, and emptied after the test)."""
    with django_db_blocker.unblock():
        env = subprocess_env({"GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
                              "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
    del env["GATEHOUSE_SECRET_KEY"]
    return env


@contextmanager
def serving(args: Sequence[str], *, env: dict[str, str], port: int, tmp_path: Path) -> Iterator[Output]:
    """Run the server while the block sends requests; then stop it and read all it wrote."""
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(list(args), cwd=REPO_ROOT, env={**env, "PORT": str(port)},
                                   stdout=stdout, stderr=stderr)
    output = Output()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60, process=process)
        yield output
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.stdout = stdout_path.read_text(errors="replace")
        output.stderr = stderr_path.read_text(errors="replace")


def send_tokens_everywhere(base_url: str) -> list[str]:
    """Requests carrying the token in their URL to gateway and console paths; returns the paths."""
    query = {"key": TOKEN}
    with httpx.Client(base_url=base_url, timeout=15) as client:
        responses = [
            client.post("/mcp/demo/", params=query, json=INITIALIZE,
                        headers={"Accept": "application/json, text/event-stream"}),
            client.get("/mcp/demo/", params=query, headers={"Accept": "text/event-stream"}),
            client.post("/mcp/", params=query, json=INITIALIZE),
            client.get("/sse/demo/", params=query),
            client.get("/accounts/login/", params=query),
            # Redirected to the login page with the whole URL, token included, in ?next=.
            client.get("/console/", params=query, follow_redirects=True),
            client.get("/console/tokens/", params={"key": TOKEN, "page": "2"}, follow_redirects=True),
        ]
    assert [r.status_code for r in responses[:4]] == [401, 401, 401, 401]
    assert [r.status_code for r in responses[4:]] == [200, 200, 200]
    assert responses[5].history[0].status_code == 302
    return ["/mcp/demo/", "/mcp/", "/sse/demo/", "/accounts/login/", "/console/", "/console/tokens/"]


def assert_no_raw_token(output: Output) -> None:
    leaks = [f"{name}: {line}" for name, line in output.lines() if any(part in line for part in SECRET_PARTS)]
    assert not leaks, "raw token written:\n" + "\n".join(leaks)


@pytest.mark.parametrize("command", serve_commands())
def test_the_readme_start_up_lines_never_write_a_raw_token(command, server_env, tmp_path):
    port = free_port()
    behind_proxy = "--proxy-headers" in command
    with serving(as_run_here(command, port), env=server_env, port=port, tmp_path=tmp_path) as output:
        paths = send_tokens_everywhere(f"http://127.0.0.1:{port}")
        if behind_proxy:
            httpx.get(f"http://127.0.0.1:{port}/accounts/login/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert (tmp_path / "data" / "secret_key").exists()  # a fresh data dir, prepared by serve

    assert_no_raw_token(output)
    # Not silence: every request was logged, with the token in its masked form.
    logged = output.access_log()
    assert {entry["http"]["path"] for entry in logged} >= set(paths)
    with_key = [entry["http"]["query"] for entry in logged if "key=" in entry["http"]["query"]]
    assert len(with_key) >= 8 and all(MASKED in query for query in with_key), with_key
    assert any(re.search(r"next=.*key.*" + re.escape(MASKED), query) for query in with_key)
    # --proxy-headers: the client address is the one the load balancer forwarded.
    client_ips = {entry["http"]["client_ip"] for entry in logged}
    assert ("203.0.113.9" in client_ips) is behind_proxy


def test_the_search_finds_the_token_daphne_itself_would_log(server_env, tmp_path):
    """The same requests against daphne started with its defaults (what a bare ``daphne …`` line
    in a Procfile or a page of docs would do): its access log has the token in clear, so the test above
    would fail if ``manage.py serve`` ever let daphne's access log on."""
    prepared = subprocess.run([sys.executable, "manage.py", "prepare_data_dir"], cwd=REPO_ROOT,
                              env=server_env, capture_output=True, text=True, check=False, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    port = free_port()
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
              "gatehouse.asgi:application"]
    with serving(daphne, env=server_env, port=port, tmp_path=tmp_path) as output:
        send_tokens_everywhere(f"http://127.0.0.1:{port}")
    with pytest.raises(AssertionError, match="raw token written"):
        assert_no_raw_token(output)

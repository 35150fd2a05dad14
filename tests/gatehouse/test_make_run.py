"""`make run` from the repository: prepares the data dir, migrates, prints the first admin once,
serves web + worker + beat, and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.gatehouse.subprocesses import embedded_env
from tests.gatehouse.test_secrets_mask import fake_token
from tests.support.processes import REPO_ROOT, free_port, wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNATURE = "MakeRunSignatureMakeRunSignatureMakeRunSig0001"
TOKEN = fake_token(jti="makerunjti01", signature=SIGNATURE)
FIRST_START_SECONDS = 300  # a first start may install the lock and run every migration


@dataclass
class Running:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never appeared in the output of make run:\n{self.log()}")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (honcho starts daphne and celery in their own sessions)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def backend() -> Iterator[dict[str, str]]:
    """Settings for make run on the back-end this test run uses, with a database of its own.

    Embedded: nothing (SQLite in the data dir). PostgreSQL + Redis: a fresh, empty database and
    a private Celery queue, so the worker it starts cannot take other tests' tasks.
    """
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        yield {}
        return
    name = f"gatehouse_makerun_{os.getpid()}"
    params = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"] or "postgres",
              "password": db["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{params['user']}:{params['password']}" if params["password"] else params["user"]
        yield {"DATABASE_URL": f"postgres://{auth}@{params['host']}:{params['port']}/{name}",
               "REDIS_URL": settings.REDIS_URL, "GATEHOUSE_CELERY_QUEUE": name}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def make_run(data_dir: Path, log_path: Path, backend: dict[str, str]) -> Iterator[Running]:
    port = free_port()
    env = embedded_env(data_dir, PORT=str(port), **backend)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPO_ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    running = Running(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        wait_for_http(f"{running.url}/health", timeout=FIRST_START_SECONDS, process=process)
        yield running
    finally:
        leftovers = descendants(process.pid)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


def ctrl_c(running: Running) -> set[int]:
    """Do what a terminal does on Ctrl-C: SIGINT to the foreground process group. Returns the
    processes that were running below make at that moment."""
    started = descendants(running.process.pid)
    os.killpg(running.process.pid, signal.SIGINT)
    running.process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in started):
        time.sleep(0.2)
    return started


def log_in(url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url, follow_redirects=True) as client:
        client.get("/accounts/login/")
        return client.post("/accounts/login/", data={
            "username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"],
        })


def test_make_run_serves_everything_and_ctrl_c_stops_it_all(tmp_path, backend):
    data_dir = tmp_path / "data"
    with make_run(data_dir, tmp_path / "first.log", backend) as first:
        assert httpx.get(f"{first.url}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{first.url}/ready", timeout=15)
        assert ready.status_code == 200, ready.text
        assert httpx.get(f"{first.url}/accounts/login/").status_code == 200
        assert httpx.get(f"{first.url}/accounts/login/", params={"key": TOKEN}).status_code == 200
        # Another PORT, no GATEHOUSE_PUBLIC_URL: what the gateway tells clients names that port.
        metadata = httpx.get(f"{first.url}/.well-known/oauth-protected-resource").json()
        assert metadata["resource"] == f"{first.url}/mcp"

        # The first admin, printed once, can log in to the console.
        username = first.wait_for_log(r"username: (\S+)").group(1)
        password = first.wait_for_log(r"password: (\S+)").group(1)
        console = log_in(first.url, username, password)
        assert console.url.path == "/console/" and "Dashboard" in console.text

        # The data dir was prepared by its explicit step (settings write nothing): the key is there.
        first.wait_for_log(rf"Prepared the data dir {re.escape(str(data_dir))}: created .*secret_key")
        key = (data_dir / "secret_key").read_text()

        # Worker and beat are up, beat keeps its schedule in the data dir.
        first.wait_for_log(r'"logger": "celery\.apps\.worker", "message": "celery@\S+ ready\."')
        first.wait_for_log(r'"logger": "celery\.beat", "message": "beat: Starting')
        # So is the stdio runner, on the port after the web process's, answering its key only.
        first.wait_for_log(r'"message": "stdio runner listening", "host": "127\.0\.0\.1", "port": (\d+)')
        runner = first.url.rsplit(":", 1)[0] + f":{int(first.url.rsplit(':', 1)[1]) + 1}"
        assert httpx.get(f"{runner}/health").json() == {"status": "ok"}
        assert httpx.post(f"{runner}/servers/any/mcp", json={}).status_code == 401
        assert any(p.name.startswith("celerybeat-schedule") for p in data_dir.iterdir())

        # The access log line for the request with ?key= is JSON and masked; nothing raw leaks.
        line = next(json.loads(raw) for raw in first.log().splitlines()
                    if raw.startswith("{") and '"gatehouse.access"' in raw and "key=" in raw)
        assert line["http"]["query"] == "key=gth_makerunj…"
        assert SIGNATURE not in first.log()

        started = ctrl_c(first)
    assert len(started) >= 4  # honcho plus daphne, worker, beat, stdio runner
    assert [pid for pid in started if alive(pid)] == []
    assert first.process.returncode != 0  # interrupted, as after Ctrl-C in a terminal

    with make_run(data_dir, tmp_path / "second.log", backend) as second:
        second.wait_for_log(r"already exists")
        assert "Prepared the data dir" not in second.log()  # nothing left to create
        assert (data_dir / "secret_key").read_text() == key  # the same key: sessions survive
        assert "password:" not in second.log() and password not in second.log()
        assert log_in(second.url, username, password).url.path == "/console/"
        started = ctrl_c(second)
    assert [pid for pid in started if alive(pid)] == []

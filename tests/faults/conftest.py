"""Real processes a fault test can break: daphne behind a cuttable database, Celery workers it can kill.

- ``database_outage`` (PostgreSQL only): a daphne whose every database connection goes through a
  private TCP proxy the test cuts and restores (``tests.support.tcp_proxy``); the test's own
  connection goes straight to PostgreSQL, so it can act (revoke a token) during the outage.
- ``workers``: ``workers.start(env={...})`` runs ``celery -A gatehouse worker --beat`` in its own
  process group on this test's broker (the filesystem transport) and queue; ``worker.kill()`` is
  ``kill -9`` of the whole group (pool processes and embedded beat too), as a crash is.
- ``gatehouse_env``: the environment those processes share, for a daphne of the same deployment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.support import processes
from tests.support.processes import REPO_ROOT, RUNNING_LOGS, daphne_args, free_port, running, subprocess_env
from tests.support.tcp_proxy import CuttableProxy, cuttable_proxy

POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite is a file: there is no server to lose"
)
WORKER_START_TIMEOUT = 60.0


def wait_until(condition: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05,
               what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def gatehouse_env(transactional_db, tmp_path) -> Callable[..., dict[str, str]]:
    """``gatehouse_env({...})``: environment of a Gatehouse process of this test's deployment."""
    queue = f"gatehouse-faults-{uuid.uuid4().hex[:12]}"

    def build(extra: dict[str, str] | None = None) -> dict[str, str]:
        return subprocess_env({
            "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
            "GATEHOUSE_SECRET_KEY": settings.SECRET_KEY,
            "GATEHOUSE_ENCRYPTION_KEY": settings.ENCRYPTION_KEY,
            "GATEHOUSE_CELERY_BROKER_URL": "filesystem://",
            "GATEHOUSE_CELERY_QUEUE": queue,
            "GATEHOUSE_SWEEP_SECONDS": "1",
            **(extra or {}),
        })

    return build


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9`` the worker, its pool processes and its embedded beat: a crash."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        RUNNING_LOGS.discard(self.log_path)


@pytest.fixture
def workers(gatehouse_env, tmp_path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    class Workers:
        def start(self, *, env: dict[str, str] | None = None) -> WorkerProcess:
            n = len(started) + 1
            log_path = tmp_path / f"worker-{n}.log"
            args = [
                sys.executable, "-m", "celery", "-A", "gatehouse", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "1", "--without-mingle", "--without-gossip",
                "--hostname", f"faults{n}-{uuid.uuid4().hex[:8]}@%h",
                "--schedule", str(tmp_path / f"beat-{n}"),
            ]
            with open(log_path, "wb") as log:
                process = subprocess.Popen(args, cwd=REPO_ROOT, env=gatehouse_env(env), stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            worker = WorkerProcess(process=process, log_path=log_path)
            started.append(worker)
            RUNNING_LOGS.add(log_path)
            deadline = time.monotonic() + WORKER_START_TIMEOUT
            while " ready." not in worker.log():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Celery worker did not start:\n{worker.log()}")
                time.sleep(0.1)
            return worker

    yield Workers()
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGTERM)
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
        RUNNING_LOGS.discard(worker.log_path)


@dataclass(frozen=True)
class Outage:
    url: str
    proxy: CuttableProxy
    env: dict[str, str]


@pytest.fixture
def database_outage(transactional_db, tmp_path) -> Iterator[Outage]:
    """A daphne whose database sits behind a proxy the test can cut (PostgreSQL only)."""
    params = connection.settings_dict
    host, db_port = params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432)
    with cuttable_proxy(host=host, port=db_port) as proxy:
        via_proxy = processes.test_database_url().replace(f":{db_port}/", f":{proxy.port}/")
        env = subprocess_env({"DATABASE_URL": via_proxy})
        port = free_port()
        with running(daphne_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health",
                     log_path=tmp_path / "daphne.log"):
            yield Outage(url=f"http://127.0.0.1:{port}", proxy=proxy, env=env)
            if proxy.is_cut:
                proxy.restore()  # let daphne's in-flight work finish before it stops

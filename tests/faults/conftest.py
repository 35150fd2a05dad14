"""Fixtures for the fault tests: a Redis of the module's own, and a live gateway wired to it.

- ``own_redis`` (module): a ``redis-server`` on a free port with a password, so a test can kill
  and restart it without disturbing any other test or engineer sharing the machine's Redis.
- ``redis_gateway`` (module): daphne on the test database with ``REDIS_URL`` (cache, channel
  layer, Celery broker) pointing at ``own_redis``, and a per-token rate of ``TOKEN_RATE`` (a
  module's ``GATEWAY_ENV`` dict adds to or overrides that environment).
- ``demo``: the ``demo`` upstream (a real MCP SDK server) registered; an API key for the REST API.

Real processes a fault test can break: daphne behind a cuttable database, Celery workers it can kill.

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
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.factories import UserFactory
from tests.support import processes
from tests.support.fixtures import LiveServer
from tests.support.polling import eventually
from tests.support.processes import REPO_ROOT, RUNNING_LOGS, daphne_args, free_port, running, subprocess_env
from tests.support.redis_server import OwnRedis, require_redis_pass
from tests.support.tcp_proxy import CuttableProxy, cuttable_proxy
from tokens.api_keys import create_api_key

REDIS_PASSWORD = "pw-secret-redis-fault-tests"
TOKEN_RATE = "30/h"  # an hour window: tests/support/clock.py


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory) -> Iterator[OwnRedis]:
    require_redis_pass("the Redis fault tests")
    folder = tmp_path_factory.mktemp("own-redis")
    redis = OwnRedis(port=free_port(), log_path=folder / "redis.log", password=REDIS_PASSWORD)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def gateway_env(redis: OwnRedis, **extra: str) -> dict[str, str]:
    """The test database, and ``redis`` for cache, channel layer and broker alike."""
    env = subprocess_env({"REDIS_URL": redis.url, "GATEHOUSE_TOKEN_RATE": TOKEN_RATE, **extra})
    for name in ("CELERY_BROKER_URL", "GATEHOUSE_CELERY_BROKER_URL"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def redis_gateway(
    request, own_redis, django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[LiveServer]:
    """A test module may add environment with a ``GATEWAY_ENV`` dict."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne-own-redis") / "daphne.log"
    with django_db_blocker.unblock():
        env = gateway_env(own_redis, **getattr(request.module, "GATEWAY_ENV", {}))
    with running(daphne_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log_path):
        yield LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path)


@dataclass(frozen=True)
class Api:
    url: str
    key: str

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/{path}", headers=self.headers, timeout=15, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/{path}", headers=self.headers, timeout=15)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def demo(transactional_db, upstream_mcp, register_upstream):
    return register_upstream(name="demo", url=upstream_mcp)


@pytest.fixture
def api(redis_gateway, demo) -> Api:
    """The REST API of ``redis_gateway``, with a CI key that may mint for ``demo``."""
    created = create_api_key(
        name="ci", owner=UserFactory(username="ci-bot"), scope_ceiling=None,
        max_ttl=timedelta(hours=1), actor="tests",
    )
    return Api(url=redis_gateway.url, key=created.secret)


POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite is a file: there is no server to lose"
)
WORKER_START_TIMEOUT = 60.0


def wait_until(condition: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05,
               what: str = "condition") -> object:
    """``eventually`` with the patience a worker start or a database restart needs."""
    return eventually(condition, timeout=timeout, every=every, what=what)


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
            env = gatehouse_env(env)
            # Settings create nothing: the worker's data dir (broker folders) is prepared first.
            subprocess.run([sys.executable, "manage.py", "prepare_data_dir", "--verbosity", "0"],
                           cwd=REPO_ROOT, env=env, check=True, timeout=60)
            with open(log_path, "wb") as log:
                process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log,
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

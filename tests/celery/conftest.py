"""A real Celery worker (with embedded beat) as a subprocess, sharing the test database.

Each worker gets its own data dir, so its filesystem broker folder and beat schedule never mix
with a developer's ``var/`` or another test run; the secret keys are passed along so it can still
decrypt upstream credentials. On Redis each worker gets its own queue name for the same reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.support.polling import eventually
from tests.support.processes import REPO_ROOT, running, subprocess_env
from tests.support.redis_server import redis_url, require_redis

FILESYSTEM = "filesystem"
REDIS = "redis"
WORKER_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Worker:
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def wait_until(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    return eventually(condition, timeout=timeout, every=0.1, what=what)


@pytest.fixture(params=[FILESYSTEM, REDIS])
def broker(request) -> str:
    """Run the test on each profile's broker: kombu's filesystem transport (embedded) and Redis
    (scale-out). Each profile's pass runs its own: SQLite with a Redis broker, or PostgreSQL with
    a filesystem broker, is no profile anyone deploys, and running it would only repeat a case."""
    if request.param == REDIS:
        if not settings.REDIS_URL:
            pytest.skip("the Redis broker belongs to the scale-out profile (REDIS_URL set); "
                        ".ci/run's PostgreSQL + Redis pass runs this case")
        require_redis("the Redis broker")
    elif connection.vendor != "sqlite":
        pytest.skip("the filesystem broker belongs to the embedded profile (SQLite); "
                    ".ci/run's embedded pass runs this case")
    return request.param


@pytest.fixture
def queue_name() -> str:
    return f"gatehouse-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def celery_env(transactional_db, tmp_path, broker, queue_name) -> Callable[..., dict[str, str]]:
    """``celery_env({...})``: the environment of a Gatehouse process on this test's broker and queue.

    A daphne started with it queues its tasks where this test's workers take them.
    """
    data_dir = tmp_path / "worker-data"
    broker_url = "filesystem://" if broker == FILESYSTEM else redis_url()

    def build(extra: dict[str, str] | None = None) -> dict[str, str]:
        return subprocess_env(
            {
                "GATEHOUSE_DATA_DIR": str(data_dir),
                "GATEHOUSE_SECRET_KEY": settings.SECRET_KEY,
                "GATEHOUSE_ENCRYPTION_KEY": settings.ENCRYPTION_KEY,
                "GATEHOUSE_CELERY_BROKER_URL": broker_url,
                "GATEHOUSE_CELERY_QUEUE": queue_name,
                "GATEHOUSE_SWEEP_SECONDS": "1",
                **(extra or {}),
            }
        )

    return build


@pytest.fixture
def start_worker(celery_env, tmp_path, broker, queue_name) -> Iterator[Callable[..., Worker]]:
    """``start_worker(env={...})`` starts ``celery -A gatehouse worker --beat`` and waits for it.

    Workers started in one test share a data dir (so, on the filesystem transport, one broker
    folder) and a queue, but each has its own beat schedule file; all stop when the test ends.
    """
    queue = queue_name
    stack = ExitStack()
    count = 0

    def start(*, env: dict[str, str] | None = None) -> Worker:
        nonlocal count
        count += 1
        log_path = tmp_path / f"worker-{count}.log"
        worker_env = celery_env(env)
        if count == 1:
            # As `make run` does before its worker starts: the data dir and the broker's folders.
            subprocess.run([sys.executable, "manage.py", "prepare_data_dir", "--verbosity", "0"],
                           cwd=REPO_ROOT, env=worker_env, check=True, timeout=120)
        args = [
            sys.executable, "-m", "celery", "-A", "gatehouse", "worker", "--beat",
            "--loglevel", "INFO", "--concurrency", "2", "--without-mingle", "--without-gossip",
            "--hostname", f"test{count}-{queue}@%h", "--schedule", str(tmp_path / f"beat-{count}"),
        ]
        process = stack.enter_context(running(args, env=worker_env, ready_url=None, log_path=log_path))
        worker = Worker(log_path=log_path)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while " ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Celery worker did not start:\n{worker.log()}")
            time.sleep(0.1)
        return worker

    # A failed test's report carries what the workers logged meanwhile (tests/conftest.py).
    with stack:
        yield start
    if broker == REDIS:
        import redis

        redis.Redis.from_url(redis_url()).delete(queue)

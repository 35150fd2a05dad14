"""A worker stopped the way honcho and container runtimes stop it (SIGTERM) says so as a log
record: every line it writes, from start to exit, is one JSON object a log pipeline can parse."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.celery.conftest import FILESYSTEM, wait_until
from tests.support.processes import REPO_ROOT, running

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("broker", [FILESYSTEM], indirect=True)
def test_a_worker_stopped_with_sigterm_writes_only_json_lines(celery_env, tmp_path, broker):
    log_path = tmp_path / "worker.log"
    env = celery_env()
    # As `make run` does before its worker starts: the data dir and the broker's folders.
    subprocess.run([sys.executable, "manage.py", "prepare_data_dir", "--verbosity", "0"],
                   cwd=REPO_ROOT, env=env, check=True, timeout=120)
    args = [sys.executable, "-m", "celery", "--quiet", "-A", "gatehouse", "worker", "--loglevel",
            "INFO", "--pool", "threads", "--without-mingle", "--without-gossip"]
    with running(args, env=env, ready_url=None, log_path=log_path) as process:
        wait_until(lambda: " ready." in log_path.read_text(), timeout=60, what="the worker to start")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # a raw line fails here, naming itself
    assert all(isinstance(record, dict) for record in records)
    assert any("Warm shutdown" in record.get("message", "") for record in records), lines

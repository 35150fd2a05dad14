""".ci/run fails unless all three passes (in-process once, integration embedded and on PostgreSQL + Redis)
ran tests and passed: a pass that collected nothing is a failure."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.processes import REPO_ROOT

# It strips the database and Redis settings: the same run in either back-end pass.
pytestmark = [pytest.mark.integration, pytest.mark.own_environment]


# Three collections (the lint is left out: it proves nothing here): slow on a loaded 2-core box.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ci_fails_when_no_test_ran():
    # Nothing of this run leaks in: not its pytest or back-end settings, nor make's command-line
    # variables (MAKEFLAGS would carry `make test PYTEST_ARGS=…` into the inner makes).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "DATABASE_URL", "REDIS_URL", "MAKE", "MFLAGS"))}
    env["PYTEST_ARGS"] = "-p no:cacheprovider -k no_test_is_called_like_this_zz9"
    env["WORKERS"] = "0"  # collecting in one process is all a pass that selects nothing needs
    result = subprocess.run(["bash", ".ci/run", "fast", "embedded", "backend"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert output.count("make test: FAILED, no tests ran") == 3, output
    assert "in-process pass: FAILED" in output
    assert "embedded pass: FAILED" in output
    assert "PostgreSQL + Redis pass: FAILED" in output
    assert "lint:" not in output  # only the steps named ran


def test_ci_refuses_a_step_it_does_not_know():
    result = subprocess.run(["bash", ".ci/run", "fast", "lnit"], cwd=REPO_ROOT, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=600, check=False)
    assert result.returncode == 2
    assert "unknown step 'lnit' (lint, fast, embedded, backend)" in result.stderr

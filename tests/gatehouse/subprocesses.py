"""Run Gatehouse in a child process with an environment we control (settings are read at import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO_ROOT

_CONFIG_PREFIXES = ("GATEHOUSE_", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_")


def embedded_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """This process's environment minus every Gatehouse setting: the embedded default profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
    env.update({"GATEHOUSE_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "gatehouse.settings",
                "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def run_python(code: str, *, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)

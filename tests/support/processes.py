"""Start real servers (Gatehouse through ``manage.py serve``, upstream MCP servers, Celery workers)
as subprocesses on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]

# Log files of the servers running now, so a failed test can show what they printed meanwhile.
RUNNING_LOGS: set[Path] = set()


def log_sizes() -> dict[Path, int]:
    """How far each running server's log has grown: the start of the next test's excerpt."""
    return {path: path.stat().st_size for path in list(RUNNING_LOGS) if path.exists()}


def log_excerpts(since: dict[Path, int], *, max_bytes: int = 20_000) -> list[tuple[str, str]]:
    """What each running server logged after ``since`` (its last ``max_bytes``), for a report."""
    excerpts = []
    for path in sorted(RUNNING_LOGS):
        if not path.exists():
            continue
        with open(path, "rb") as log:
            start = since.get(path, 0)
            log.seek(max(start, path.stat().st_size - max_bytes))
            text = log.read().decode(errors="replace").strip()
        if text:
            excerpts.append((f"{path.parent.name}/{path.name}", text))
    return excerpts


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the test database pytest-django created, for subprocesses to share it."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    if connection.vendor == "postgresql":
        host = params.get("HOST") or "127.0.0.1"
        port = params.get("PORT") or 5432
        user = params.get("USER") or "postgres"
        password = params.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgres://{auth}{host}:{port}/{params['NAME']}"
    raise RuntimeError(f"unsupported test database vendor {connection.vendor}")


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a Gatehouse subprocess: same settings, pointed at the test database."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "GATEHOUSE_DATA_DIR": str(settings.DATA_DIR),
            "GATEHOUSE_PUBLIC_URL": settings.PUBLIC_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra or {})
    return env


def wait_for_http(url: str, *, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError as exc:
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last_error}")


@contextmanager
def running(
    args: Sequence[str], *, env: Mapping[str, str], ready_url: str | None, log_path: Path
) -> Iterator[subprocess.Popen]:
    """Run ``args`` until the block ends; stdout/stderr go to ``log_path`` for post-mortems."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(args), cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        RUNNING_LOGS.add(log_path)
        try:
            if ready_url:
                wait_for_http(ready_url, process=process)
            yield process
        finally:
            RUNNING_LOGS.discard(log_path)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_args(port: int, *, bind: str = "127.0.0.1") -> list[str]:
    """The web process started the documented way (``manage.py serve``, as the Procfile and the
    container do): daphne without its raw access log, the data dir prepared first."""
    return [sys.executable, "manage.py", "serve", "--bind", bind, "--port", str(port)]


# The old name, for test code written before the live servers started through ``manage.py serve``.
daphne_args = serve_args

"""Redis for the tests: the shared one the scale-out tests need (CI starts it in .ci/run; locally
it may be missing), and ``OwnRedis``, a private ``redis-server`` a fault test may kill."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.support.run_environment import worker_redis_url

DEFAULT_REDIS_URL = worker_redis_url("redis://127.0.0.1:6379/0")


def redis_url() -> str:
    return settings.REDIS_URL or DEFAULT_REDIS_URL


def redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def require_redis(what: str) -> str:
    """Redis's URL; fails the test in CI when Redis is down (a silent skip would hide ``what``)."""
    url = redis_url()
    if not redis_reachable(url):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {url}, needed for {what}")
        pytest.skip(f"Redis is not reachable at {url} (start it to test {what})")
    return url


def require_redis_pass(what: str) -> None:
    """Skip outside the PostgreSQL + Redis pass (``REDIS_URL`` set), where ``what`` belongs."""
    if not settings.REDIS_URL:
        pytest.skip(f"{what}: PostgreSQL + Redis pass only (REDIS_URL is not set)")


class OwnRedis:
    """A ``redis-server`` of the test's own on a free port, to stop, kill and restart at will.

    Nothing is persisted (``--save "" --appendonly no``): a restart comes back empty, as a Redis
    that lost its memory would. ``url`` stays the same across restarts.
    """

    def __init__(self, *, port: int, log_path: Path, password: str = "") -> None:
        self.port = port
        self.log_path = log_path
        self.password = password
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def binary(what: str) -> str:
        """``redis-server``'s path; fails in CI when it is missing, skips elsewhere."""
        found = shutil.which("redis-server")
        if found is None:
            if os.environ.get("CI"):
                pytest.fail(f"redis-server is not installed, needed for {what}")
            pytest.skip(f"redis-server is not installed (install it to test {what})")
        return found

    def start(self, *, timeout: float = 10.0) -> None:
        args = [self.binary("a Redis of the test's own"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not redis_reachable(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.log_path}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def info(self) -> dict:
        """``INFO clients`` and ``INFO stats`` in one dict: ``connected_clients``,
        ``total_connections_received``, …"""
        with self.client() as client:
            return {**client.info("clients"), **client.info("stats")}

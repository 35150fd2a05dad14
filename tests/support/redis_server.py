"""The Redis the scale-out tests need (CI starts it in .ci/run; locally it may be missing)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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

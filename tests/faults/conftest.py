"""Fixtures for the fault tests: a Redis of the module's own, and a live gateway wired to it.

- ``own_redis`` (module): a ``redis-server`` on a free port with a password, so a test can kill
  and restart it without disturbing any other test or engineer sharing the machine's Redis.
- ``redis_gateway`` (module): daphne on the test database with ``REDIS_URL`` (cache, channel
  layer, Celery broker) pointing at ``own_redis``, and a per-token rate of ``TOKEN_RATE`` (a
  module's ``GATEWAY_ENV`` dict adds to or overrides that environment).
- ``demo``: the ``demo`` upstream (a real MCP SDK server) registered; an API key for the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from tests.factories import UserFactory
from tests.support.fixtures import LiveServer
from tests.support.processes import daphne_args, free_port, running, subprocess_env
from tests.support.redis_server import OwnRedis, require_redis_pass
from tokens.api_keys import create_api_key

REDIS_PASSWORD = "pw-secret-redis-fault-tests"
TOKEN_RATE = "30/m"


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

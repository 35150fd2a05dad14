"""Fixtures for the REST API tests: API keys made through the real service, clients that send them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import UpstreamServerFactory, UserFactory
from tokens.api_keys import CreatedApiKey, create_api_key
from tokens.scope import TokenScope


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in the shared cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def servers(db):
    """Two upstream servers, ``demo`` and ``files``."""
    return [UpstreamServerFactory(name="demo"), UpstreamServerFactory(name="files")]


@pytest.fixture
def make_api_key(db) -> Callable[..., CreatedApiKey]:
    """``make_api_key(owner=user, ceiling={"demo": ["echo"]}, max_ttl=timedelta(hours=1))``."""

    def _make(
        *,
        owner=None,
        ceiling: dict | None = None,
        max_ttl: timedelta = timedelta(hours=1),
        name: str = "ci",
        expires_at=None,
    ) -> CreatedApiKey:
        owner = owner or UserFactory(username="ci-bot")
        return create_api_key(
            name=name,
            owner=owner,
            scope_ceiling=TokenScope.from_mapping(ceiling) if ceiling is not None else None,
            max_ttl=max_ttl,
            expires_at=expires_at,
            actor="tests",
        )

    return _make


def bearer_client(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def ci_key(servers, make_api_key) -> CreatedApiKey:
    """A non-staff CI key limited to demo:echo and demo:add, tokens of at most one hour."""
    return make_api_key(ceiling={"demo": ["echo", "add"]}, max_ttl=timedelta(hours=1))


@pytest.fixture
def ci(ci_key) -> Client:
    return bearer_client(ci_key.secret)

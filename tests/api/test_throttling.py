"""Per-API-key rate limit: 429 with Retry-After, counted per key over the shared cache."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.api.conftest import bearer_client


@pytest.fixture
def settings_override(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "apikey": "3/m"},
    }
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["apikey"] == "3/m"
    return settings


def test_a_key_over_its_rate_gets_429_with_retry_after(ci, ci_key, servers, make_api_key, settings_override):
    for _ in range(3):
        assert ci.get("/api/v1/servers/").status_code == 200

    response = ci.get("/api/v1/servers/")

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"] == "throttled"
    assert AuditEvent.objects.filter(event="apikey.used", status=429, outcome="denied").count() == 1
    other = bearer_client(make_api_key(name="other").secret)
    assert other.get("/api/v1/servers/").status_code == 200


def test_console_sessions_are_not_limited_by_the_key_rate(staff_client, settings_override):
    statuses = {staff_client.get("/api/v1/servers/").status_code for _ in range(5)}

    assert statuses == {200}

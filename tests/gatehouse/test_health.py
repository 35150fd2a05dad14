"""/health says the process is alive without touching anything; /ready checks every dependency
and names the ones that fail."""

from __future__ import annotations

import httpx
import pytest

from core import heartbeats
from tests.gatehouse.subprocesses import embedded_env
from tests.support.processes import free_port, running, serve_args


def test_health_is_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_health_never_touches_the_database(client):
    # No ``db`` fixture: pytest-django makes any database access in this test an error.
    assert client.get("/health").status_code == 200


def test_health_makes_no_queries(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/health").status_code == 200


def test_ready_checks_database_cache_channel_layer_and_broker(client, db):
    heartbeats.beat(heartbeats.SWEEP)  # a worker swept just now
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "channel_layer": "ok", "broker": "ok"},
        "background": {"sweeps": "ok"},
        # No gateway request has started this process's change follower: the database answers.
        "hot_path": "database (no request yet)",
    }


@pytest.fixture
def gatehouse_with(tmp_path):
    """Start daphne with a given environment; yields its base URL."""

    def start(**overrides: str):
        port = free_port()
        env = embedded_env(tmp_path, **overrides)
        return running(serve_args(port), env=env, ready_url=f"http://127.0.0.1:{port}/health",
                       log_path=tmp_path / "daphne.log"), f"http://127.0.0.1:{port}"

    return start


@pytest.mark.integration
def test_unreachable_database_makes_ready_503_but_health_200(gatehouse_with):
    server, url = gatehouse_with(DATABASE_URL=f"postgres://postgres:pw-secret@127.0.0.1:{free_port()}/nowhere")
    with server:
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.get(f"{url}/ready", timeout=15)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database"]
    assert body["checks"]["database"].startswith("error: ")
    assert "pw-secret" not in response.text


@pytest.mark.integration
def test_unreachable_redis_makes_ready_503_naming_cache_layer_and_broker(gatehouse_with):
    server, url = gatehouse_with(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with server:
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.get(f"{url}/ready", timeout=15)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["cache", "channel_layer", "broker"]
    assert all(body["checks"][name].endswith("(redis)") for name in body["failed"])
    assert body["checks"]["database"] == "ok"

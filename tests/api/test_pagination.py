"""Cursors are opaque but forgeable base64: a forged one is the caller's mistake, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from tests.support.sessions import make_session
from upstreams.models import UpstreamServer

LISTS = ["/api/v1/tokens/", "/api/v1/sessions/", "/api/v1/audit/"]


def forged(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.fixture
def two_of_each(ci, ci_key):
    """Two tokens minted through the API (so two mint audit events) and a session for each."""
    demo = UpstreamServer.objects.get(name="demo")
    for name in ("a", "b"):
        minted = ci.post(
            "/api/v1/tokens/", {"name": name, "servers": ["demo"], "tools": {"demo": ["echo"]}, "ttl": "1h"},
            content_type="application/json",
        )
        assert minted.status_code == 201, minted.content
        make_session(token=ci_key.api_key.owner.tokens.get(name=name), server=demo)


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    "position", ["abc", "2020-01-01x", "99999999999999999999999", "1e400", "\x00", "", "NaN"]
)
def test_a_forged_cursor_position_gets_400_naming_the_cursor(ci, url, position):
    response = ci.get(f"{url}?{urlencode({'cursor': forged(f'p={position}')})}")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "cursor" in body["fields"]


@pytest.mark.parametrize("position", ["1", "2020-01-01", "2020-01-01 10:00:00"])
def test_sessions_page_by_start_time_so_ids_and_naive_times_are_not_positions(ci, position):
    response = ci.get(f"/api/v1/sessions/?{urlencode({'cursor': forged(f'p={position}')})}")

    assert response.status_code == 400
    assert "cursor" in response.json()["fields"]


@pytest.mark.parametrize("url", LISTS)
def test_the_cursors_the_api_hands_out_walk_every_page(ci, two_of_each, url):
    seen, next_url = 0, f"{url}?page_size=1"
    while next_url:
        response = ci.get(next_url)
        assert response.status_code == 200, response.content
        seen += len(response.json()["results"])
        next_url = response.json()["next"]
    assert seen >= 2

"""A CI client that streams its request body (chunked, no Content-Length) is read like any other."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings

from tokens.models import Token

pytestmark = pytest.mark.integration


def _chunked(data: bytes, size: int = 1024) -> Iterator[bytes]:
    """httpx sends an iterator body with ``Transfer-Encoding: chunked`` and no length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _post(url: str, key: str, body: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    response = httpx.post(url, headers=headers, content=_chunked(body), timeout=30)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    return response


def test_a_chunked_mint_request_mints_the_token(transactional_db, live_gateway, ci_key):
    body = json.dumps({"name": "streamed", "servers": ["demo"], "tools": {"demo": ["echo"]}, "ttl": "10m"})
    response = _post(f"{live_gateway.url}/api/v1/tokens/", ci_key.secret, body.encode())
    assert response.status_code == 201, response.text
    assert response.json()["token"].startswith("gth_")
    assert Token.objects.get(name="streamed").scope == {"demo": ["echo"]}


def test_a_chunked_body_over_the_limit_gets_413_and_mints_nothing(transactional_db, live_gateway, ci_key):
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = json.dumps({"name": "huge", "servers": ["demo"], "ttl": "10m", "padding": padding})
    response = _post(f"{live_gateway.url}/api/v1/tokens/", ci_key.secret, body.encode())
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert not Token.objects.filter(name="huge").exists()

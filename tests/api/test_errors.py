"""Every API error has the same JSON body, ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from django.test import Client
from rest_framework import exceptions

from api.errors import exception_handler
from tokens.exceptions import InvalidTransition, ScopeCeilingExceeded, TokenRevoked


def test_unknown_api_path_gets_a_json_404(ci):
    response = ci.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_a_missing_trailing_slash_gets_a_404_that_says_so(ci):
    response = ci.post("/api/v1/tokens", {}, content_type="application/json")

    assert response.status_code == 404
    assert "/api/v1/tokens/" in response.json()["detail"]


def test_unknown_path_without_credentials_is_404_too(db):
    assert Client().get("/api/v1/nothing-here/").json()["error"] == "not_found"


def test_wrong_method_gets_a_json_405(ci):
    response = ci.put("/api/v1/tokens/", {}, content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "detail": 'Method "PUT" not allowed.'}


def test_unsupported_media_type_gets_a_json_415(ci):
    response = ci.post("/api/v1/tokens/", "name=x", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_json_nested_deeper_than_the_parser_goes_is_a_400_parse_error(ci):
    response = ci.post("/api/v1/tokens/", b"[" * 100_000, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"  # as for any body that is not JSON
    assert "nested too deeply" in response.json()["detail"]


def test_domain_errors_map_to_status_codes():
    cases = [
        (ScopeCeilingExceeded("beyond"), 403, "scope_ceiling_exceeded"),
        (InvalidTransition("already revoked"), 409, "invalid_state"),
        (TokenRevoked("revoked"), 401, "invalid_token"),
    ]
    for exc, status, code in cases:
        response = exception_handler(exc, {})
        assert (response.status_code, response.data["error"]) == (status, code)


def test_an_unexpected_error_is_a_json_500_without_internals(caplog):
    response = exception_handler(RuntimeError("db password is hunter2"), {})

    assert response.status_code == 500
    assert response.data == {"error": "server_error", "detail": "Internal error; it has been logged."}
    assert "RuntimeError" in caplog.text


def test_throttled_keeps_retry_after():
    response = exception_handler(exceptions.Throttled(wait=12.2), {})

    assert response.status_code == 429
    assert response["Retry-After"] == "13"
    assert response.data["error"] == "throttled"


def test_a_body_over_the_limit_gets_a_json_413_and_mints_nothing(ci, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"name": "' + "A" * 20_000 + '", "servers": ["demo"], "tools": {"demo": ["echo"]}}'

    response = ci.post("/api/v1/tokens/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "10000 bytes" in response.json()["detail"]
    assert ci.get("/api/v1/tokens/").json()["results"] == []

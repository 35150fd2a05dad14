"""RFC 7591 registration: safe redirect URIs only, closable, rate limited per address."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.tokens.oauth.flow.steps import (
    REDIRECT,
    register,
)


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://evil.example/cb",
        "file:///etc/passwd",
        "https://good.example/cb#frag",
        "vbscript:msgbox",
        "https://user:pw@good.example/cb",
        "http://evil.example\\@127.0.0.1/cb",
    ],
)
def test_registration_refuses_dangerous_redirect_uris(db, uri):
    answer = Client().post(
        "/oauth/register", json.dumps({"redirect_uris": [uri]}), content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_redirect_uri"


def test_registration_accepts_native_app_schemes_and_https(db):
    body = register(
        redirect_uris=[
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "https://claude.ai/api/mcp/auth_callback",
        ]
    )
    assert body["client_id"].startswith("gthc_")
    assert AuditEvent.objects.filter(event="oauth.client_registered").exists()


def test_registration_can_be_closed(db, settings):
    settings.OAUTH_REGISTRATION = "off"
    answer = Client().post(
        "/oauth/register", json.dumps({"redirect_uris": [REDIRECT]}), content_type="application/json"
    )
    assert answer.status_code == 403 and answer.json()["error"] == "access_denied"
    assert "registration_endpoint" not in Client().get("/.well-known/oauth-authorization-server").json()


def test_registration_is_rate_limited_per_address(db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "oauth_register": "2/h",
        },
    }
    # A made-up X-Forwarded-For is no new address: the limit keys on the socket's.
    statuses = [
        Client()
        .post(
            "/oauth/register",
            json.dumps({"redirect_uris": [REDIRECT]}),
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
        .status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]

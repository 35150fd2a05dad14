"""The steps of the OAuth flow as a client and a browser take them, for the in-process tests."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.test import Client

REDIRECT = "http://127.0.0.1:33418/callback"


def signed_in(person) -> Client:
    """A browser with ``person`` signed in to the console, as consent needs."""
    browser = Client()
    browser.force_login(person)
    return browser


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(client: Client | None = None, **metadata) -> dict:
    body = {
        "client_name": "Claude",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **metadata,
    }
    response = (client or Client()).post("/oauth/register", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def authorize_params(client_id: str, challenge: str, **overrides) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{settings.PUBLIC_URL}/mcp/demo/",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def consent(browser: Client, params: dict[str, str], *, decision: str = "allow", tools=None):
    page = browser.get("/oauth/authorize", params)
    assert page.status_code == 200, page.content
    form = dict(params)
    form["decision"] = decision
    form["tools"] = tools if tools is not None else ["demo:echo", "demo:add"]
    return browser.post("/oauth/authorize", form)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(**form) -> tuple[int, dict]:
    response = Client().post(
        "/oauth/token", urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    return response.status_code, response.json()


def exchange(client_id: str, verifier: str, code: str, **extra) -> tuple[int, dict]:
    return token_request(
        grant_type="authorization_code",
        client_id=client_id,
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        resource=f"{settings.PUBLIC_URL}/mcp/demo/",
        **extra,
    )

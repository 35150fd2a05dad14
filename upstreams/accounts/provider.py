"""The OAuth client side of connected accounts: Gatehouse asking an upstream's provider for a
person's tokens (authorization code with PKCE S256, RFC 6749/7636) and refreshing them.

The protocol lives here and nowhere else; ``upstreams.accounts.services`` decides what to store
and audit. Nothing here logs a code or a token, and errors name the provider's ``error`` code
only (never its description, which a provider may fill with what it was sent).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from django.conf import settings

from upstreams.exceptions import ProviderRefused, ProviderUnreachable
from upstreams.user_credentials import OAuthProvider


@dataclass(frozen=True)
class ProviderTokens:
    access_token: str
    refresh_token: str
    # Seconds until the access token expires; None when the provider did not say.
    expires_in: int | None

    def __repr__(self) -> str:  # tokens are secrets
        return f"ProviderTokens(expires_in={self.expires_in!r}, refresh={bool(self.refresh_token)})"


def new_pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_url(provider: OAuthProvider, *, redirect_uri: str, state: str, challenge: str) -> str:
    """Where the person's browser goes to sign in at the provider and allow Gatehouse."""
    params = {
        "response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        **({"scope": provider.scopes} if provider.scopes else {}),
    }
    parts = urlsplit(provider.authorize_url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def exchange_code(provider: OAuthProvider, *, code: str, redirect_uri: str, verifier: str) -> ProviderTokens:
    return _token_request(provider, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    })


def refresh(provider: OAuthProvider, *, refresh_token: str) -> ProviderTokens:
    return _token_request(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def _token_request(provider: OAuthProvider, form: dict[str, str]) -> ProviderTokens:
    """POST to the token endpoint: a confidential client by HTTP Basic, a public one by its id."""
    auth = httpx.BasicAuth(provider.client_id, provider.client_secret) if provider.client_secret else None
    if auth is None:
        form = {**form, "client_id": provider.client_id}
    try:
        with httpx.Client(timeout=settings.UPSTREAM_TIMEOUT_SECONDS, follow_redirects=False,
                          trust_env=False, auth=auth) as client:
            answer = client.post(provider.token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderUnreachable(f"The provider could not be reached ({type(exc).__name__}).") from exc
    try:
        parsed = answer.json()
    except ValueError:
        parsed = None
    body: dict[str, object] = parsed if isinstance(parsed, dict) else {}
    if answer.status_code >= 500 or answer.status_code == 429:
        raise ProviderUnreachable(f"The provider answered {answer.status_code}.")
    access, refresh_token, error = body.get("access_token"), body.get("refresh_token"), body.get("error")
    if answer.status_code != 200 or not isinstance(access, str) or not access:
        named = error if isinstance(error, str) else f"http_{answer.status_code}"
        raise ProviderRefused(f"The provider refused ({named[:64]}).")
    expires = body.get("expires_in")
    return ProviderTokens(
        access_token=access,
        refresh_token=refresh_token if isinstance(refresh_token, str) else "",
        expires_in=int(expires) if isinstance(expires, (int, float)) else
        int(expires) if isinstance(expires, str) and expires.isdigit() else None,
    )

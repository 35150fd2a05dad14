"""How the API knows the caller: ``Authorization: Bearer gthk_…`` (an API key) or a console
session with CSRF.

The key is checked by ``tokens.api_keys.authenticate_api_key``; this module only reads the header.
A ``gth_`` gateway token is not an API credential and is refused with 401, never ignored (falling
through to the session would hide the mistake). Each refusal leaves a note on the request for the
audit row the view writes.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request

from core.secrets_mask import API_KEY_PREFIX, TOKEN_PREFIX
from tokens.api_keys import authenticate_api_key, masked_api_key
from tokens.exceptions import ApiKeyInvalid
from tokens.models import ApiKey

WWW_AUTHENTICATE = 'Bearer realm="gatehouse-api"'

# Set on the underlying HttpRequest when a presented credential was refused, for the audit row.
FAILURE_ATTR = "gatehouse_api_auth_failure"


def _note_refusal(request: Request, *, reason: str, presented: str, actor: str = "") -> None:
    """``presented`` is the non-secret form of what was sent (``gthk_<id>_***``, ``gth_***``)."""
    setattr(request._request, FAILURE_ATTR, {"reason": reason, "presented": presented, "actor": actor})


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates the request as the key's owner; ``request.auth`` is the ``ApiKey``."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer":
            return None  # Basic etc.: not ours; the permission check answers 401.
        if value.startswith(API_KEY_PREFIX):
            try:
                api_key = authenticate_api_key(raw_key=value)
            except ApiKeyInvalid as exc:
                _note_refusal(request, reason=exc.detail, presented=masked_api_key(value))
                raise exceptions.AuthenticationFailed(exc.detail) from exc
            return api_key.owner, api_key
        if value.startswith(TOKEN_PREFIX):
            reason = "A gateway token (gth_) is not an API credential; use an API key (gthk_)."
            presented = "gth_***"
        else:
            reason = "The API accepts only API keys (gthk_) as bearer credentials."
            presented = "bearer"
        _note_refusal(request, reason=reason, presented=presented)
        raise exceptions.AuthenticationFailed(reason)

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class ConsoleSessionAuthentication(SessionAuthentication):
    """DRF's session authentication (CSRF enforced), noting who was refused for lack of CSRF."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            user = getattr(request._request, "user", None)
            _note_refusal(
                request,
                reason=str(exc.detail),
                presented="session",
                actor=user.get_username() if user is not None else "",
            )
            raise

"""Fixtures for token tests: JWT forging helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from tokens import crypto
from tokens.signing_keys import get_active_signing_key


@pytest.fixture
def forge(db) -> Callable[..., str]:
    """Sign arbitrary claims/headers with the real active key: ``forge(claims=..., headers=...)``.

    Defaults are a valid token for ``jti``; tests override one thing to prove it is checked.
    """

    def _forge(*, jti: str, sub: str, claims: dict[str, Any] | None = None,
               headers: dict[str, Any] | None = None, key: Any = None, algorithm: str | None = None) -> str:
        signing = get_active_signing_key()
        now = int(timezone.now().timestamp())
        body: dict[str, Any] = {
            "iss": settings.TOKEN_ISSUER,
            "aud": settings.TOKEN_AUDIENCE,
            "sub": sub,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "scope": {"demo": None},
        }
        body.update(claims or {})
        encoded = jwt.encode(
            body,
            key if key is not None else crypto.load_private_key(signing.private_key_encrypted),
            algorithm=algorithm or signing.algorithm,
            headers={"kid": signing.kid, **(headers or {})},
        )
        return f"gth_{encoded}"

    return _forge

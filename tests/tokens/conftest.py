"""Fixtures for token tests: an auditor, clients for each console role, JWT forging helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from gatehouse.permissions import AUDITOR_GROUP
from tests.factories import UserFactory
from tokens import crypto
from tokens.services import get_active_signing_key


@pytest.fixture
def auditor(db):
    user = UserFactory(username="audrey-auditor")
    user.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    return user


@pytest.fixture
def auditor_client(auditor) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def plain_client(user) -> Client:
    """Logged in, but neither staff nor auditor."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def csrf_staff_client(staff_user) -> Client:
    """A staff client that, like a browser, must present the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


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

"""Trusted-issuer test helpers: a CI client at the real provider, and hostile tokens signed with its key.

Hostile tokens (expired, not yet valid, ``alg: none``, HS256 keyed with the public key, another
key under the provider's kid) are what an attacker or a broken provider could present; they are
signed here with the provider's own private key or a stranger's, while discovery and the key
set always come from the running provider.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CI_CLIENT = ("gatehouse-ci", "ci-client-secret-0123456789")
OTHER_CLIENT = ("other-app", "other-client-secret-0123456789")
CI_SUBJECT = "repo:acme/app:ref:refs/heads/main"


def claims_for(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer, "aud": CI_CLIENT[0], "sub": CI_SUBJECT, "iat": now, "exp": now + 600,
        "jti": f"hostile-{time.time_ns()}", "repository": "acme/app", "ref": "refs/heads/main",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], *, private_key_pem: str, kid: str, alg: str = "RS256") -> str:
    return jwt.encode(claims, private_key_pem, algorithm=alg, headers={"kid": kid})


def unsigned(claims: dict[str, Any], *, kid: str) -> str:
    """``alg: none``: pyjwt will not make one, so build it by hand."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."


def hs256_with_public_key(claims: dict[str, Any], *, private_key_pem: str, kid: str) -> str:
    """The key-confusion attack: an HMAC over the token keyed with the provider's public key."""
    import hashlib
    import hmac

    private_key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}." \
                    f"{part(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def stranger_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# --- fixtures (registered as a plugin in tests/conftest.py) ---------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ci_provider(oidc_provider):
    """The real provider with two confidential clients: ``gatehouse-ci`` (our audience) and another."""
    oidc_provider.register_client(*CI_CLIENT)
    oidc_provider.register_client(*OTHER_CLIENT)
    return oidc_provider


@pytest.fixture
def trust_issuer(db, ci_provider, settings):
    """``trust_issuer(name="gha", rules=("repository=acme/app",), direct=False, scope=None)``.

    The servers of the scope are created too; the key refetch limit is off so a test's rotation is
    seen at once (the limit itself is the provider's protection, not what these tests are about).
    """
    from datetime import timedelta

    from tests.factories import UpstreamServerFactory
    from tokens.issuers.claim_rules import parse_rule
    from tokens.issuers.services import IssuerSettings, create_issuer
    from tokens.scope import TokenScope
    from upstreams.models import UpstreamServer

    settings.ISSUER_KEYS_REFETCH_SECONDS = 0.001

    def _trust(*, name: str = "gha", rules: tuple[str, ...] = ("repository=acme/app", "ref=refs/heads/main"),
               direct: bool = False, scope: dict | None = None,
               max_ttl: timedelta = timedelta(minutes=30)) -> object:
        scope = scope or {"demo": ["echo", "add"], "files": None}
        for server in scope:
            if not UpstreamServer.objects.filter(name=server).exists():
                UpstreamServerFactory(name=server)
        return create_issuer(
            config=IssuerSettings(
                name=name, issuer=ci_provider.issuer, audience=CI_CLIENT[0],
                scope=TokenScope.from_mapping(scope),
                rules=[parse_rule(rule) for rule in rules], max_ttl=max_ttl, direct=direct,
            ),
            actor="tests",
        )

    return _trust

"""``oidc_provider``: a real OpenID Connect provider on loopback, for the identity tests.

django-oauth-toolkit (``tests/support/oidc_provider``) in its own process and SQLite file, issuer
``http://127.0.0.1:PORT/o``, RS256 keys it publishes at its ``jwks_uri``. Its users: ``alice``
(groups ``gatehouse-admins``), ``bob`` (``gatehouse-auditors``), ``eve`` (no groups) and
``ci-bot``, whose id_tokens are shaped like GitHub Actions' (``sub`` ``repo:acme/app:ref:…``,
``repository``, ``ref``, ``environment``, ``workflow``). ``id_token`` drives the provider's own
authorization-code flow; ``rotate_key`` restarts it with a new signing key while the old one
stays published, as a provider's key rotation looks from outside.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.processes import REPO_ROOT, free_port, running

PASSWORDS = {
    "alice": "alice-pass-8d2f", "bob": "bob-pass-51c0", "eve": "eve-pass-77aa", "ci-bot": "ci-pass-3e9b",
}
USERS = {
    "alice": {"claims": {"email": "alice@example.com", "email_verified": True, "preferred_username": "alice",
                         "groups": ["gatehouse-admins"]}},
    "bob": {"claims": {"email": "bob@example.com", "email_verified": True, "preferred_username": "bob",
                       "groups": ["gatehouse-auditors"]}},
    "eve": {"claims": {"email": "eve@example.com", "email_verified": True, "preferred_username": "eve",
                       "groups": []}},
    "ci-bot": {"claims": {
        "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app", "repository_owner": "acme",
        "ref": "refs/heads/main", "environment": "production", "workflow": "deploy",
    }},
}
_DEFAULT_REDIRECT = "http://127.0.0.1/cb"


def _new_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class OidcProvider:
    url: str
    issuer: str
    workdir: Path
    env: dict[str, str]
    _stack: ExitStack = field(default_factory=ExitStack)
    _generation: int = 0

    # --- process -------------------------------------------------------------------------
    def _manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "django", *args], cwd=REPO_ROOT, env=self.env, check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        port = urlsplit(self.url).port
        log_path = self.workdir / f"provider-{self._generation}.log"
        self._stack.enter_context(running(
            [sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks",
             f"127.0.0.1:{port}"],
            env=self.env, ready_url=f"{self.issuer}/.well-known/openid-configuration", log_path=log_path,
        ))

    def stop(self) -> None:
        self._stack.close()
        self._stack = ExitStack()

    # --- what tests use ------------------------------------------------------------------
    def register_client(self, client_id: str, client_secret: str,
                        redirect_uris: list[str] | None = None) -> None:
        uris = redirect_uris or [_DEFAULT_REDIRECT]
        self._manage("oidc_setup", "client", client_id, client_secret, *uris)

    @property
    def private_key_pem(self) -> str:
        return (self.workdir / "keys" / "active.pem").read_text()

    @property
    def kid(self) -> str:
        """The active key's kid, as the provider publishes it (its JWK thumbprint)."""
        public = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None).public_key()
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        for key in httpx.get(f"{self.issuer}/.well-known/jwks.json", timeout=5).json()["keys"]:
            if key["n"] == jwk["n"]:
                return key["kid"]
        raise AssertionError("the provider does not publish its active key")

    def rotate_key(self) -> None:
        keys = self.workdir / "keys"
        self._generation += 1
        (keys / "active.pem").rename(keys / f"inactive-{self._generation:03d}.pem")
        (keys / "active.pem").write_text(_new_key_pem())
        self.stop()
        self.start()

    def login_session(self, *, user: str) -> httpx.Client:
        """An httpx client signed in at the provider as ``user`` (cookies kept), redirects not followed."""
        client = httpx.Client(timeout=10)
        page = client.get(f"{self.url}/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, page.text
        done = client.post(f"{self.url}/login/", data={
            "csrfmiddlewaretoken": csrf.group(1), "username": user, "password": PASSWORDS[user],
            "next": "/o/",
        }, headers={"Referer": f"{self.url}/login/"})
        assert done.status_code == 302, f"login as {user} failed: {done.status_code}"
        return client

    def id_token(self, *, user: str, client_id: str, client_secret: str,
                 redirect_uri: str = _DEFAULT_REDIRECT) -> str:
        """A real id_token: sign in, authorize (no consent screen), trade the code at the token endpoint."""
        session = self.login_session(user=user)
        try:
            authorized = session.get(f"{self.issuer}/authorize/", params={
                "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                "scope": "openid email profile", "state": "s", "nonce": "n",
            })
            assert authorized.status_code == 302, authorized.text[:500]
            code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
            answer = httpx.post(f"{self.issuer}/token/", data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": client_id, "client_secret": client_secret,
            }, timeout=10)
            assert answer.status_code == 200, answer.text[:500]
            return answer.json()["id_token"]
        finally:
            session.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    workdir = tmp_path_factory.mktemp("oidc-provider")
    (workdir / "keys").mkdir()
    (workdir / "keys" / "active.pem").write_text(_new_key_pem())
    users_file = workdir / "users.json"
    users = {name: {**user, "password": PASSWORDS[name]} for name, user in USERS.items()}
    users_file.write_text(json.dumps(users))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/o"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GATEHOUSE_", "DJANGO_")) and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "tests.support.oidc_provider.settings", "PYTHONUNBUFFERED": "1",
        "OIDC_PROVIDER_DB": str(workdir / "provider.sqlite3"), "OIDC_PROVIDER_ISSUER": issuer,
        "OIDC_PROVIDER_KEYS": str(workdir / "keys"), "OIDC_PROVIDER_USERS": str(users_file),
    })
    provider = OidcProvider(url=f"http://127.0.0.1:{port}", issuer=issuer, workdir=workdir, env=env)
    provider._manage("migrate", "--run-syncdb", "-v", "0")
    provider._manage("oidc_setup", "users", str(users_file))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()

"""Fixtures for the OAuth authorization server tests against real clients.

- ``test_ca`` (session): a throwaway CA (``tests.support.oauth_clients.TestCA``) the live
  Gatehouse trusts through ``SSL_CERT_FILE``.
- ``document_server`` (session): a loopback https server signed by it, for Client ID Metadata
  Documents (``document_server.publish_client(name, redirect_uris)`` → the client_id URL).
- ``oauth_gateway`` (session): ``manage.py serve`` sharing the test database, whose
  ``GATEHOUSE_PUBLIC_URL`` is its own address, so the issuer and resource URLs it publishes are
  the ones the clients reach (``live_gateway`` keeps the default ``http://127.0.0.1:8000``).
- ``oauth_site`` (function): ``demo`` (the real upstream) registered on it, and a person
  (a plain non-staff user with a password) with ``oauth_site.grant(tools=...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.management import call_command

from tests.support.fixtures import LiveServer
from tests.support.oauth_clients import DocumentServer, Person, TestCA
from tests.support.processes import free_port, running, serve_args, subprocess_env

PERSON = Person("oauth-person", "a long enough test password 7")

# Every test registers clients from 127.0.0.1; the default per-address limit is for the open web.
OAUTH_GATEWAY_ENV = {"GATEHOUSE_OAUTH_REGISTRATION_RATE": "1000/m", "GATEHOUSE_OAUTH_TOKEN_RATE": "1000/m"}


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("oauth-ca"))


@pytest.fixture(scope="session")
def document_server(test_ca) -> Iterator[DocumentServer]:
    server = DocumentServer(test_ca)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def oauth_gateway(django_db_setup, django_db_blocker, tmp_path_factory, test_ca) -> Iterator[LiveServer]:
    """Gatehouse whose public URL (issuer, resource) is the address it listens on."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("daphne-oauth") / "daphne.log"
    with django_db_blocker.unblock():
        env = subprocess_env({"GATEHOUSE_PUBLIC_URL": url, **OAUTH_GATEWAY_ENV, **test_ca.trust_env()})
    with running(serve_args(port), env=env, ready_url=f"{url}/health", log_path=log_path):
        yield LiveServer(url=url, log_path=log_path)


@dataclass
class OAuthSite:
    base: str
    person: Person
    server_log: LiveServer

    def mcp(self, server: str = "demo") -> str:
        """The only thing a client is given."""
        return f"{self.base}/mcp/{server}/"

    def grant(self, *, servers: str = "demo", tools: str = "") -> None:
        """``manage.py grant_access --user <person> --servers ... [--tools ...]``."""
        args = ["--user", self.person.username, "--servers", servers]
        if tools:
            args += ["--tools", tools]
        call_command("grant_access", *args, verbosity=0)


@pytest.fixture
def oauth_site(
    oauth_gateway, transactional_db, upstream_mcp, register_upstream, django_user_model
) -> OAuthSite:
    register_upstream(name="demo", url=upstream_mcp)
    django_user_model.objects.create_user(PERSON.username, password=PERSON.password)
    return OAuthSite(base=oauth_gateway.url, person=PERSON, server_log=oauth_gateway)

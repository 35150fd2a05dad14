"""Fixtures of the in-process OAuth tests: two servers, a person with a password, a grant, and a
client that went through consent."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import UpstreamServerFactory, UserFactory
from tests.tokens.oauth.flow.steps import (
    authorize_params,
    consent,
    pkce,
    query_of,
    register,
    signed_in,
)
from tokens.oauth import grants


@pytest.fixture(autouse=True)
def _servers(db, settings):
    # Registration is rate limited per address, and every test client comes from 127.0.0.1.
    cache.clear()
    settings.OAUTH_REGISTRATION = "on"
    UpstreamServerFactory(name="demo")
    UpstreamServerFactory(name="files")


@pytest.fixture
def person(db):
    alice = UserFactory(username="alice")
    alice.set_password("correct horse")
    alice.save()
    return alice


@pytest.fixture
def granted(person):
    grants.grant_access(user=person, servers=["demo"], tools=["echo", "add"], actor="tests")
    return person


@pytest.fixture
def connected(granted):
    """A public client that went through consent: (client_id, verifier, code)."""
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(granted)
    answer = consent(browser, authorize_params(client_id, challenge))
    assert answer.status_code == 302
    return client_id, verifier, query_of(answer["Location"])["code"]

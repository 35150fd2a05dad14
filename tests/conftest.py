"""Fixtures shared by every test area. Area-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from audit.services import flush_pending
from core.permissions import AUDITOR_GROUP
from tests.factories import StaffUserFactory, UpstreamServerFactory, UserFactory
from tests.support.database import install_flush_retry
from tests.support.hashers import install_quick_hasher
from tests.support.processes import log_excerpts, log_sizes
from tokens.scope import TokenScope
from tokens.services import IssuedToken, issue_token
from upstreams.models import UpstreamServer

pytest_plugins = [
    "tests.support.fixtures", "tests.support.stdio_runner", "tests.support.oidc", "tests.support.issuers",
    "tests.support.process_guard", "tests.support.clock",
]


_DB_FIXTURES = frozenset({"db", "transactional_db", "django_db_setup"})


_LOGS_AT_START = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    install_flush_retry()
    install_quick_hasher()
    # WhiteNoise indexes every static file (the API docs' assets: thousands) each time a handler
    # is built, which the test client does per test; in-process tests look a file up when asked.
    # Servers the tests start keep the production behaviour.
    from django.conf import settings

    settings.WHITENOISE_AUTOREFRESH = True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (each most of a minute) run first: the xdist workers share the rest
    out around them, instead of one worker still running one of them after the others are done.
    Every worker collects the same order, as xdist requires."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOGS_AT_START] = log_sizes()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's report carries what the live servers (daphne, upstreams, workers) logged."""
    report = yield
    if report.failed and report.when == "call":
        for name, text in log_excerpts(item.stash.get(_LOGS_AT_START, {})):
            report.sections.append((f"Server log {name}", text))
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Write the audit events a test queued while its database still exists.

    Runs before fixture teardown; otherwise a late batch lands in the next test's database.
    """
    if _DB_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("django_db"):
        flush_pending(timeout=10)


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def staff_user(db):
    return StaffUserFactory(username="root-admin")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


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
def demo_server(db) -> UpstreamServer:
    return UpstreamServerFactory(name="demo")


@pytest.fixture
def make_token(db, user) -> Callable[..., IssuedToken]:
    """Issue a real token through the service: ``make_token({"demo": ["echo"]}, ttl=...)``."""

    def _make(scope: dict | None = None, *, ttl: timedelta | None = timedelta(hours=1), owner=None,
              name: str = "test-token") -> IssuedToken:
        scope = scope or {"demo": None}
        for server in scope:
            UpstreamServerFactory(name=server)
        return issue_token(
            name=name, owner=owner or user, scope=TokenScope.from_mapping(scope), ttl=ttl, actor="tests"
        )

    return _make

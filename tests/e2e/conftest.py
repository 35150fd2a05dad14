"""Browser fixtures: headless Chromium (Debian package) driving the console served by daphne.

Playwright's sync API keeps an asyncio loop marked as running in the main thread while it is
started. That breaks Django's ORM (SynchronousOnlyOperation) and any pytest-asyncio test run
afterwards, so the browser lives for this package only and the ORM is allowed for its lifetime.
Keep browser tests under ``tests/e2e/``.

Fixtures: ``browser`` (package), ``browser_context`` (fresh cookies, base URL = ``live_gateway``),
``anonymous_page``, ``console_page`` (staff, logged in), ``login_as(user)`` (any user, own context).
Take screenshots with ``page.screenshot(path=tmp_path / "x.png")`` to look at what a test saw.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

PASSWORD = "correct horse battery staple"  # StaffUserFactory's password
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]


@pytest.fixture(scope="package")
def browser() -> Iterator:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian chromium is not installed; `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(browser, live_gateway) -> Iterator:
    """A fresh cookie jar per test, with the live server as base URL."""
    context = browser.new_context(base_url=live_gateway.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def anonymous_page(browser_context) -> Iterator:
    yield browser_context.new_page()


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the real login form and wait for the dashboard."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console/")


@pytest.fixture
def console_page(transactional_db, staff_user, anonymous_page) -> Iterator:
    """A page logged in to the console as ``staff_user``, in ``browser_context``."""
    log_in(anonymous_page, staff_user.username)
    yield anonymous_page


@pytest.fixture
def login_as(transactional_db, browser, live_gateway) -> Iterator[Callable]:
    """``login_as(user)`` -> a page logged in as ``user`` in its own browser context (own cookies),
    e.g. an auditor next to ``console_page``. Users from the factories have ``PASSWORD``."""
    contexts = []

    def login(user, password: str = PASSWORD):
        context = browser.new_context(base_url=live_gateway.url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        log_in(page, user.get_username(), password)
        return page

    yield login
    for context in contexts:
        context.close()

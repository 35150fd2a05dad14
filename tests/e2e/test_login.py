"""A staff member logs in through the browser and lands on the console dashboard."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from core.permissions import AUDITOR_GROUP
from tests.e2e.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

NAVIGATION = ["Servers", "Tokens", "Sessions", "Audit", "API keys"]


def test_root_sends_anonymous_visitor_to_login(anonymous_page, transactional_db):
    anonymous_page.goto("/")
    expect(anonymous_page).to_have_url(re.compile(r"/accounts/login/\?next=/console/$"))
    expect(anonymous_page.get_by_role("heading", name="Log in to Gatehouse")).to_be_visible()


def test_staff_login_shows_dashboard_with_navigation(console_page, tmp_path):
    expect(console_page.get_by_role("heading", name="Dashboard")).to_be_visible()
    nav = console_page.get_by_role("navigation", name="Main")
    for label in NAVIGATION:
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    console_page.screenshot(path=tmp_path / "dashboard.png", full_page=True)


def test_wrong_password_stays_on_login_with_error(anonymous_page, staff_user, transactional_db):
    anonymous_page.goto("/accounts/login/")
    anonymous_page.get_by_label("Username").fill(staff_user.username)
    anonymous_page.get_by_label("Password").fill("not " + PASSWORD)
    anonymous_page.get_by_role("button", name="Log in").click()
    expect(anonymous_page.get_by_role("alert")).to_contain_text("didn't match")
    expect(anonymous_page).to_have_url(re.compile(r"/accounts/login/$"))


def test_log_out_returns_to_login(console_page):
    console_page.get_by_role("button", name="Log out").click()
    expect(console_page).to_have_url(re.compile(r"/accounts/login/$"))
    console_page.goto("/console/")
    expect(console_page).to_have_url(re.compile(r"/accounts/login/\?next=/console/$"))


def test_auditor_and_staff_are_signed_in_side_by_side(console_page, login_as):
    auditor = UserFactory(username="reader")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    auditor_page = login_as(auditor)
    expect(auditor_page.locator(".logout span")).to_have_text("reader")
    expect(console_page.locator(".logout span")).to_have_text("root-admin")

"""A staff member registers, edits and disables an upstream server in the browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tokens import crypto
from upstreams.models import UpstreamServer

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_add_edit_and_disable_a_server(console_page, upstream_mcp, tmp_path):
    page = console_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers", exact=True).click()
    expect(page.get_by_role("heading", name="Upstream servers")).to_be_visible()
    page.get_by_role("link", name="Add a server").click()

    page.get_by_label("Name").fill("demo")
    page.get_by_label("Upstream URL").fill(upstream_mcp)
    page.get_by_label("Transport").select_option("streamable")
    page.get_by_label("Description").fill("Demo tools")
    page.get_by_label("Upstream headers").fill("X-Upstream-Key: browser-secret")
    page.get_by_role("button", name="Add server").click()

    expect(page).to_have_url(re.compile(r"/console/servers/demo/$"))
    expect(page.get_by_role("heading", name="demo", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="echo", exact=True)).to_be_visible()  # live tools/list
    expect(page.get_by_text("X-Upstream-Key")).to_be_visible()
    assert "browser-secret" not in page.content()
    page.screenshot(path=tmp_path / "server-detail.png", full_page=True)

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("X-Upstream-Key").check()
    # Not Authorization: the upstream is shared, and gateway tests prove no Authorization reaches it.
    page.get_by_label("Add or replace headers").fill("X-Replaced-Key: replaced-secret")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Server demo saved.")).to_be_visible()
    server = UpstreamServer.objects.get(name="demo")
    assert crypto.decrypt_json(server.headers_encrypted) == {"X-Replaced-Key": "replaced-secret"}

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("Server demo disabled")).to_be_visible()
    server.refresh_from_db()
    assert not server.enabled


def test_the_add_form_shows_only_the_chosen_transports_fields(console_page):
    page = console_page
    page.goto("/console/servers/add/")
    expect(page.get_by_label("Upstream URL")).to_be_visible()
    expect(page.get_by_label("Command (stdio)")).to_be_hidden()
    page.get_by_label("Transport").select_option("stdio")  # switched in place by the script
    expect(page.get_by_label("Command (stdio)")).to_be_visible()
    expect(page.get_by_label("Upstream URL")).to_be_hidden()
    page.get_by_role("link", name="Streamable HTTP").click()  # the same without JavaScript: a link
    expect(page.get_by_label("Upstream URL")).to_be_visible()

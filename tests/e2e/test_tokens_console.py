"""In the browser: add a server, issue a token with live tools, copy the snippets, revoke it."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tokens.exceptions import TokenRevoked
from tokens.models import Token
from tokens.services import authenticate_token

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SNIPPET_TITLES = [
    "1. supergateway, token in a header (recommended)",
    "2. supergateway, token in the URL",
    "3. mcp-remote, token in a header",
    "4. Claude Desktop (claude_desktop_config.json)",
    "5. Claude Code",
    "6. curl: initialize",
]


def _add_server(page, url: str) -> None:
    page.goto("/console/servers/add/")
    page.get_by_label("Name").fill("demo")
    page.get_by_label("Upstream URL").fill(url)
    page.get_by_role("button", name="Add server").click()
    expect(page).to_have_url(re.compile(r"/console/servers/demo/$"))


def test_issue_a_token_see_the_snippets_then_revoke_it(console_page, browser_context, upstream_mcp, tmp_path):
    page = console_page
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"])
    _add_server(page, upstream_mcp)

    page.get_by_role("link", name="Issue a token for demo").click()
    expect(page.get_by_role("heading", name="Issue a token")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_label("Lifetime").fill("1d")
    expect(page.get_by_label("Allow demo")).to_be_checked()  # preselected from the server page
    page.get_by_label("Only the tools selected below").check()
    page.get_by_label("echo", exact=True).check()
    page.get_by_label("add", exact=True).check()
    page.screenshot(path=tmp_path / "issue-form.png", full_page=True)
    page.get_by_role("button", name="Issue token").click()

    expect(page.get_by_role("heading", name="Token issued")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("gth_")
    titles = page.get_by_role("heading", level=3).all_inner_texts()
    assert titles == SNIPPET_TITLES
    expect(page.locator("#snippet-demo-supergateway-header")).to_contain_text(f"--oauth2Bearer {secret}")

    copy = page.get_by_role("button", name="Copy: supergateway, token in a header (recommended) (demo)")
    copy.click()
    expect(copy).to_have_text("Copied")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard.startswith("npx -y supergateway --streamableHttp") and secret in clipboard
    page.screenshot(path=tmp_path / "show-once.png", full_page=True)

    authed = authenticate_token(raw_token=secret)
    assert authed.scope.to_mapping() == {"demo": ["add", "echo"]}

    # Reloading re-posts the form: the token is not shown again and no second token is minted.
    page.reload()
    expect(page.get_by_text("never shown again")).to_be_visible()
    assert secret not in page.content()
    assert Token.objects.count() == 1

    page.get_by_role("link", name="Revoke token…").click()
    expect(page.get_by_role("heading", name=re.compile("Revoke token laptop"))).to_be_visible()
    page.get_by_label("Reason").fill("demo over")
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("revoked. Open connections close within a second.")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("demo over")
    page.screenshot(path=tmp_path / "revoked.png", full_page=True)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=secret)
    assert secret not in page.content()


def test_token_list_filters_in_the_browser(console_page, make_token):
    make_token({"demo": None}, name="laptop")
    make_token({"files": ["read"]}, name="ci-nightly")
    page = console_page
    page.goto("/console/tokens/")
    expect(page.get_by_role("link", name="laptop")).to_be_visible()
    page.get_by_label("Server").select_option("files")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="ci-nightly")).to_be_visible()
    expect(page.get_by_role("link", name="laptop")).to_have_count(0)


def test_the_issued_token_reaches_the_upstream_through_the_gateway(console_page, upstream_mcp, live_gateway):
    page = console_page
    _add_server(page, upstream_mcp)
    page.goto("/console/tokens/new/")
    page.get_by_label("Name", exact=True).fill("curl")
    page.get_by_label("Allow demo").check()
    page.get_by_role("button", name="Issue token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream"}
    response = httpx.post(f"{live_gateway.url}/mcp/demo/", json=body, headers=headers, timeout=10)
    assert response.status_code == 200
    assert "gatehouse-test-upstream" in response.text

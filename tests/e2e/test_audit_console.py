"""The audit console in a real browser: filter, open an event, follow its token, export CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest

from audit.services import record

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

JTI = "5eed5eed" + "a" * 24


@pytest.fixture
def audit_events(transactional_db):
    record(event="mcp.tool_call", token_jti=JTI, owner="alice", server="github", tool="search_issues",
           session_id="sess-e2e", client_ip="10.0.0.8", status=200, latency_ms=12.5,
           detail={"arguments": {"query": "flaky deploy"}, "rpc_id": 3})
    denied = record(event="mcp.tool_denied", token_jti=JTI, owner="alice", server="github",
                    tool="delete_repo", outcome="denied", status=403,
                    detail={"reason": "tool not in token scope"})
    record(event="mcp.request", token_jti="b" * 32, owner="bob", server="jira",
           detail={"method": "tools/list"})
    return denied


def test_filter_open_event_follow_token_and_export(console_page, audit_events):
    page = console_page
    page.goto("/console/audit/")
    table = page.get_by_role("table", name="Audit events")
    assert table.get_by_text("mcp.request").count() >= 1

    page.get_by_label("Event", exact=True).select_option("mcp.tool_denied")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"event=mcp.tool_denied"))
    rows = page.get_by_role("table", name="Audit events").locator("tbody tr")
    assert rows.count() == 1
    assert "delete_repo" in rows.first.inner_text()

    rows.first.get_by_role("link", name=str(audit_events.pk)).click()
    page.wait_for_url(f"**/console/audit/{audit_events.pk}/")
    detail = page.get_by_label("Event detail (JSON)").inner_text()
    assert '"reason": "tool not in token scope"' in detail
    assert page.get_by_text("matches the content").is_visible()

    page.get_by_role("link", name="usage").click()
    page.wait_for_url(f"**/console/audit/token/{JTI}/usage/")
    assert page.locator("svg.chart rect.requests").count() == 30
    assert page.get_by_role("table", name="Top tools").get_by_text("search_issues").is_visible()

    page.goto("/console/audit/?owner=alice")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    content = download_info.value.path().read_text(encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(content)))
    assert {row["event"] for row in exported} == {"mcp.tool_call", "mcp.tool_denied"}
    assert all(row["token"] == "gth_5eed5eed…" for row in exported)

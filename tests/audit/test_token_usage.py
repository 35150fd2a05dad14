"""Per-token usage: requests and denials over time as an SVG chart, top tools, last use."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

JTI = "c0ffee00" + "1" * 24


@pytest.fixture
def traffic(make_event):
    """Events of the last three days; request it before a client fixture (whose sign-in event
    would otherwise come first in the chain and pull these times forward)."""
    now = timezone.now()
    # Noon three days ago: the hour added below must not carry an event into the next day (this
    # test failed when run between 23:00 and midnight UTC).
    start = (now - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    for i in range(5):
        make_event(event="mcp.tool_call", token_jti=JTI, server="github", tool="search",
                   created_at=start + timedelta(minutes=i))
    for i in range(2):
        make_event(event="mcp.tool_denied", token_jti=JTI, server="github", tool="delete_repo",
                   outcome="denied", status=403, created_at=start + timedelta(hours=1, minutes=i))
    make_event(event="mcp.request", token_jti=JTI, server="github", created_at=now - timedelta(days=1))
    last = make_event(event="mcp.tool_call", token_jti=JTI, server="jira", tool="get_ticket",
                      client_ip="10.9.8.7", created_at=now - timedelta(hours=2))
    make_event(event="auth.denied", token_jti=JTI, outcome="denied", status=401,
               created_at=now - timedelta(hours=1))
    make_event(event="mcp.tool_call", token_jti="d" * 32, server="github", tool="search")  # another token
    return last


def test_usage_page_draws_requests_and_denials_per_day(traffic, auditor_client):
    response = auditor_client.get(f"/console/audit/token/{JTI}/usage/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and 'role="img"' in body
    titles = re.findall(r"<title>(\d{4}-[^<]+)</title>", body)
    assert len(titles) == 30
    counts = [tuple(map(int, re.search(r": (\d+) requests, (\d+) denied", t).groups())) for t in titles]
    three_days_ago = (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%d")
    assert f"{three_days_ago}: 7 requests, 2 denied" in titles
    assert sum(r for r, _ in counts) == 10
    assert sum(d for _, d in counts) == 3
    assert "10 requests, 3 denied" in body


def test_usage_page_lists_top_tools_and_last_use(traffic, auditor_client):
    last = traffic
    body = auditor_client.get(f"/console/audit/token/{JTI}/usage/").content.decode()
    table = body[body.index("Top tools"):]
    assert table.index("search") < table.index("delete_repo") < table.index("get_ticket")
    assert re.search(r"search</a></td><td>5</td><td>0</td>", table)
    assert re.search(r"delete_repo</a></td><td>2</td><td>2</td>", table)
    assert f"event #{last.pk}" in body
    assert "from 10.9.8.7" in body


def test_usage_for_one_day_is_hourly(traffic, auditor_client):
    body = auditor_client.get(f"/console/audit/token/{JTI}/usage/?days=1").content.decode()
    assert len(re.findall(r"<title>\d{4}-\d\d-\d\d \d\d:00: ", body)) == 24
    assert "last 24 hours" in body


def test_usage_of_an_unused_token_says_never(auditor_client, db):
    body = auditor_client.get(f"/console/audit/token/{'e' * 32}/usage/").content.decode()
    assert "never" in body
    assert "No tool calls in this period." in body


def test_usage_links_to_the_token_page_when_it_exists(auditor_client, make_token):
    issued = make_token({"demo": None})
    body = auditor_client.get(f"/console/audit/token/{issued.token.jti}/usage/").content.decode()
    assert f'href="/console/tokens/{issued.token.pk}/"' in body

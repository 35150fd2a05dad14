"""The dashboard: each number is right, and each links to the list that shows exactly those rows."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from audit import events
from audit.services import record
from gateway.models import SessionBinding
from tokens.services import revoke_token

FIGURE = re.compile(r'<li><a href="([^"]+)"><strong>(\d+)</strong>([^<]+)</a></li>')
AUDIT_ROW = re.compile(r'<td><a href="/console/audit/\d+/">(\d+)</a></td>')


def figures(page: str) -> dict[str, tuple[int, str]]:
    return {label: (int(value), unescape(url)) for url, value, label in FIGURE.findall(page)}


@pytest.fixture
def activity(make_token):
    """Two days of history: tokens in every state, one live session, gateway traffic and admin work.

    Request it before any fixture that writes audit events (a console login): see the first line.
    """
    now = timezone.now()
    # First: the chain keeps event times non-decreasing, so history is written before today.
    record(event=events.MCP_TOOL_CALL, actor="gth_0ld", server="notes", tool="search",
           created_at=now - timedelta(hours=30))
    month = timedelta(days=30)
    make_token({"notes": None}, name="old-history", ttl=month)
    active = [make_token({"notes": None}, name=f"active-{i}", ttl=month) for i in range(3)]
    make_token({"notes": None}, name="expiring-soon", ttl=timedelta(days=2))
    revoke_token(token=make_token({"notes": None}, name="revoked-one", ttl=month).token, actor="admin")
    token = active[0].token
    SessionBinding.objects.create(id="s-live", token=token, server=token_server(), upstream_session_id="u1",
                                  last_seen_at=now)
    for tool in ("search", "search", "write"):
        record(event=events.MCP_TOOL_CALL, actor=token.display_prefix, token_jti=token.jti, server="notes",
               tool=tool, outcome="success", status=200)
    record(event=events.MCP_TOOL_DENIED, actor=token.display_prefix, token_jti=token.jti, server="notes",
           tool="delete_all", outcome="denied", status=403)
    record(event=events.AUTH_DENIED, actor="gth_***", outcome="denied", status=401)
    return active


def token_server():
    from upstreams.models import UpstreamServer

    return UpstreamServer.objects.get(name="notes")


def test_every_number_is_right_and_links_to_exactly_its_rows(activity, staff_client):
    page = staff_client.get("/console/").content.decode()
    found = figures(page)
    assert {label: value for label, (value, _) in found.items()} == {
        "Active tokens": 5,  # old-history, three active, expiring-soon
        "Expiring within 7 days": 1,
        "Live sessions": 1,
        "Gateway requests, 24 h": 4,  # three calls and the denied one; the 30 h old call is out
        "Refusals, 24 h": 2,
    }

    tokens = staff_client.get(found["Active tokens"][1]).content.decode()
    assert all(f">{name}<" in tokens or name in tokens for name in ("active-0", "active-2", "expiring-soon"))
    assert "revoked-one" not in tokens
    expiring = staff_client.get(found["Expiring within 7 days"][1]).content.decode()
    assert "expiring-soon" in expiring and "active-1" not in expiring
    sessions = staff_client.get(found["Live sessions"][1]).content.decode()
    assert activity[0].token.display_prefix in sessions
    for label in ("Gateway requests, 24 h", "Refusals, 24 h"):
        listed = staff_client.get(found[label][1]).content.decode()
        assert len(AUDIT_ROW.findall(listed)) == found[label][0], label


def test_top_tools_chart_and_admin_actions(activity, staff_client):
    page = staff_client.get("/console/").content.decode()
    top = re.findall(r'<td>notes</td><td><a href="([^"]+)">(\w+)</a></td><td>(\d+)</td><td>(\d+)</td>', page)
    assert [(tool, int(calls), int(denied)) for _, tool, calls, denied in top] == [
        ("search", 2, 0), ("delete_all", 1, 1), ("write", 1, 0),
    ]
    search_url = unescape(top[0][0])
    assert len(AUDIT_ROW.findall(staff_client.get(search_url).content.decode())) == 2
    assert '<svg class="chart"' in page
    assert "token.revoked" in page and "token.issued" in page  # the last admin actions
    assert "Audit webhook" not in page  # not configured


def test_auditors_see_it_and_strangers_do_not(auditor_client, plain_client, activity):
    assert auditor_client.get("/console/").status_code == 200
    # A stranger is sent to "My access" and refused the console's pages.
    assert plain_client.get("/console/")["Location"] == "/console/me/"
    assert plain_client.get("/console/audit/").status_code == 403


def test_an_empty_dashboard_says_what_to_do_first(staff_client):
    page = staff_client.get("/console/").content.decode()
    assert "First steps" in page
    assert 'href="/console/servers/add/"><strong>Add a server</strong>' in page
    assert "npx -y @modelcontextprotocol/server-everything" in page


def test_the_first_steps_lead_from_the_server_to_its_token_and_go_once_both_exist(staff_client, make_token):
    from upstreams.services import create_server

    create_server(name="everything", url="http://127.0.0.1:9/mcp", actor="admin")
    page = unescape(staff_client.get("/console/").content.decode())
    assert "Server added" in page and 'href="/console/servers/everything/"' in page
    assert 'href="/console/tokens/new/?server=everything"><strong>Issue a token</strong>' in page
    make_token({"everything": None})
    assert "First steps" not in staff_client.get("/console/").content.decode()


def test_everything_else_links_every_area(staff_client):
    page = staff_client.get("/console/").content.decode()
    for href in ("/console/servers/", "/console/tokens/", "/console/sessions/", "/console/audit/",
                 "/console/api-keys/", "/console/issuers/", "/console/access/"):
        assert f'<a href="{href}"><strong>' in page, href

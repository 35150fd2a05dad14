"""The audit list under /console/audit/: who may read it, every filter, keyset paging, search."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from audit import selectors
from audit.models import AuditEvent
from tests.factories import UserFactory

JTI_A = "a1b2c3d4" + "0" * 24
JTI_B = "ffee0011" + "9" * 24


def _ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<td><a href="/console/audit/(\d+)/">', response.content.decode())]


def _link(response, rel: str) -> str:
    return re.search(rf'href="([^"]+)" rel="{rel}"', response.content.decode()).group(1).replace("&amp;", "&")


@pytest.fixture
def events(make_event):
    base = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    return {
        "issued": make_event(event="token.issued", actor="root-admin", token_jti=JTI_A, owner="alice",
                             created_at=base, detail={"name": "laptop"}),
        "call": make_event(event="mcp.tool_call", token_jti=JTI_A, owner="alice", server="github",
                           tool="search_issues", session_id="sess-1", client_ip="10.0.0.5",
                           created_at=base + timedelta(hours=1),
                           detail={"arguments": {"query": "flaky deploy pipeline"}}),
        "denied": make_event(event="mcp.tool_denied", token_jti=JTI_A, owner="alice", server="github",
                             tool="delete_repo", session_id="sess-1", client_ip="10.0.0.5", outcome="denied",
                             status=403, created_at=base + timedelta(hours=2)),
        "other": make_event(event="mcp.request", token_jti=JTI_B, owner="bob", server="jira",
                            session_id="sess-2", client_ip="2001:db8::7", created_at=base + timedelta(days=1),
                            detail={"method": "tools/list"}),
        "login": make_event(event="console.login", actor="root-admin", client_ip="192.0.2.1",
                            created_at=base + timedelta(days=2)),
    }


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get("/console/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_user_without_a_console_role_is_refused(client, db):
    client.force_login(UserFactory(username="plain"))
    assert client.get("/console/audit/").status_code == 403


def test_auditor_reads_the_log(auditor_client, events):
    response = auditor_client.get("/console/audit/")
    assert response.status_code == 200
    assert events["call"].pk in _ids(response)


def test_staff_reads_the_log(staff_client, events):
    assert staff_client.get("/console/audit/").status_code == 200


def test_newest_events_come_first(auditor_client, events):
    ids = _ids(auditor_client.get("/console/audit/"))
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize("query,expected", [
    ("event=mcp.tool_call", ["call"]),
    ("event=mcp.*", ["call", "denied", "other"]),
    ("outcome=denied", ["denied"]),
    (f"token={JTI_A}", ["issued", "call", "denied"]),
    ("token=gth_a1b2c3d4…", ["issued", "call", "denied"]),
    ("token=gth_a1b2c3d4", ["issued", "call", "denied"]),
    ("token=ffee", ["other"]),
    ("owner=bob", ["other"]),
    ("server=github", ["call", "denied"]),
    ("server=github&tool=delete_repo", ["denied"]),
    ("session=sess-1", ["call", "denied"]),
    ("client_ip=10.0.0.5", ["call", "denied"]),
    ("client_ip=2001:DB8:0::7", ["other"]),
    ("since=2026-01-10T12:30&until=2026-01-11T12:00", ["call", "denied"]),
    ("since=2026-01-11T00:00:00Z&until=2026-01-13T00:00:00%2B00:00", ["other", "login"]),
    ("until=2026-01-10T13:00", ["issued"]),
    ("q=FLAKY", ["call"]),
    ("q=tools/list", ["other"]),
    ("q=laptop&owner=alice", ["issued"]),
    # Search also finds exact values of the indexed columns, not only text in the detail.
    ("q=bob", ["other"]),
    ("q=delete_repo", ["denied"]),
    ("q=mcp.tool_denied", ["denied"]),
    ("q=sess-2", ["other"]),
    ("q=10.0.0.5", ["call", "denied"]),
    ("q=gth_ffee0011", ["other"]),
    ("q=gth_a1b2c3d4…&server=github", ["call", "denied"]),
    ("q=github&outcome=denied", ["denied"]),
    ("q=git", []),
    ("owner=alice&outcome=denied&server=github", ["denied"]),
    ("token=gth_00000000", []),
    ("since=2030-01-01T00:00", []),
])
def test_each_filter_shows_only_matching_events(events, auditor_client, query, expected):
    # ``events`` first: their (past) times must precede the auditor's sign-in event in the chain.
    response = auditor_client.get(f"/console/audit/?{query}")
    assert response.status_code == 200
    assert sorted(_ids(response)) == sorted(events[name].pk for name in expected)


def test_invalid_filter_shows_the_error_and_no_events(auditor_client, events):
    response = auditor_client.get("/console/audit/?client_ip=not-an-ip")
    assert response.status_code == 200
    assert "Not an IP address." in response.content.decode()
    assert _ids(response) == []


def test_pasted_token_is_replaced_by_its_display_prefix(auditor_client, make_token, make_event):
    issued = make_token({"demo": None})
    make_event(event="mcp.request", token_jti=issued.token.jti)
    response = auditor_client.get("/console/audit/", {"token": issued.secret})
    assert response.status_code == 302
    assert issued.secret not in response["Location"]
    followed = auditor_client.get(response["Location"])
    assert issued.secret not in followed.content.decode()
    assert len(_ids(followed)) == AuditEvent.objects.filter(token_jti=issued.token.jti).count()


def test_keyset_pages_walk_older_and_back_newer(auditor_client, make_event):
    rows = [make_event(event="mcp.request", server="demo", detail={"i": i}) for i in range(120)]
    newest_first = [row.pk for row in reversed(rows)]

    first = auditor_client.get("/console/audit/?server=demo")
    assert _ids(first) == newest_first[:50]
    older = _link(first, "next")
    second = auditor_client.get(older)
    assert _ids(second) == newest_first[50:100]
    third_url = _link(second, "next")
    third = auditor_client.get(third_url)
    assert _ids(third) == newest_first[100:]
    assert 'rel="next"' not in third.content.decode()
    newer = _link(third, "prev")
    assert _ids(auditor_client.get(newer)) == newest_first[50:100]


def test_bounded_search_says_what_it_covered_and_continues(auditor_client, make_event, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 10)
    monkeypatch.setattr(selectors, "SEARCH_SCAN_LIMIT", 20)
    needle = make_event(event="mcp.tool_call", detail={"ticket": "zq"})
    for i in range(60):
        make_event(event="mcp.request", detail={"i": i})
    # Two letters: too short for the trigram index, so this is a bounded scan on every database.
    first = auditor_client.get("/console/audit/?q=zq")
    body = first.content.decode()
    assert _ids(first) == []
    assert "Searched events #" in body
    link = re.search(r'href="([^"]+)">continue searching older events', body).group(1).replace("&amp;", "&")
    found = False
    for _ in range(5):
        page = auditor_client.get(link)
        if needle.pk in _ids(page):
            found = True
            break
        match = re.search(r'href="([^"]+)">continue searching older events', page.content.decode())
        link = match.group(1).replace("&amp;", "&")
    assert found


def test_list_links_each_event_to_its_token_session_and_filters(auditor_client, events):
    body = auditor_client.get("/console/audit/").content.decode()
    assert f'href="/console/audit/token/{JTI_A}/usage/"' in body
    assert 'href="/console/audit/session/sess-1/"' in body
    assert "gth_a1b2c3d4…" in body


def test_session_link_lists_that_sessions_events(auditor_client, events):
    response = auditor_client.get("/console/audit/session/sess-1/", follow=True)
    assert sorted(_ids(response)) == sorted([events["call"].pk, events["denied"].pk])


def test_odd_identifiers_from_unverified_requests_still_render(auditor_client, make_event):
    odd = make_event(event="auth.denied", token_jti="../x/y z?", session_id="a/b#c", outcome="denied")
    response = auditor_client.get("/console/audit/")
    assert odd.pk in _ids(response)
    assert "/console/audit/token/../" not in response.content.decode()
    assert auditor_client.get(f"/console/audit/{odd.pk}/").status_code == 200
    filtered = auditor_client.get("/console/audit/", {"session": "a/b#c"})
    assert _ids(filtered) == [odd.pk]

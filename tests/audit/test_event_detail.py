"""The event page: every field, pretty JSON, chain status, links to token, session and filters."""

from __future__ import annotations

import html

from django.db import connection


def test_detail_page_shows_pretty_json_and_a_valid_chain(auditor_client, make_event):
    previous = make_event(event="token.issued")
    event = make_event(event="mcp.tool_call", token_jti="ab12cd34" + "0" * 24, owner="alice", server="github",
                       tool="search", session_id="sess-9", client_ip="10.1.2.3",
                       detail={"arguments": {"query": "café"}, "rpc_id": 7})
    response = auditor_client.get(f"/console/audit/{event.pk}/")
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert '{\n  "arguments": {\n    "query": "café"\n  },\n  "rpc_id": 7\n}' in body
    assert "matches the content" in body
    assert f"matches event #{previous.pk}" in body
    assert f'href="/console/audit/token/{event.token_jti}/"' in body
    assert f'href="/console/audit/token/{event.token_jti}/usage/"' in body
    assert 'href="/console/audit/?session=sess-9"' in body
    assert "gth_ab12cd34…" in body


def test_altered_event_is_flagged_on_its_page(auditor_client, make_event):
    event = make_event(event="mcp.request", detail={"n": 1})
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET detail = %s WHERE id = %s", ['{"n": 2}', event.pk])
    body = auditor_client.get(f"/console/audit/{event.pk}/").content.decode()
    assert "does not match the content: this event was altered" in body


def test_unknown_event_is_404(auditor_client):
    assert auditor_client.get("/console/audit/999999/").status_code == 404


def test_token_link_goes_to_the_token_page_when_the_token_exists(auditor_client, make_token):
    issued = make_token({"demo": None})
    response = auditor_client.get(f"/console/audit/token/{issued.token.jti}/")
    assert response.status_code == 302
    assert response["Location"] == f"/console/tokens/{issued.token.pk}/"


def test_token_link_of_an_unknown_token_goes_to_its_usage(auditor_client, db):
    response = auditor_client.get(f"/console/audit/token/{'9' * 32}/")
    assert response["Location"] == f"/console/audit/token/{'9' * 32}/usage/"

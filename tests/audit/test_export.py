"""CSV and JSON Lines exports of the current filter: streamed, complete, safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test import AsyncClient

from audit.models import AuditEvent
from audit.selectors import AuditFilter, export_chunks


@pytest.fixture
def exportable(make_event):
    return [
        make_event(event="mcp.tool_call", server="github", tool="search", owner="alice",
                   detail={"arguments": {"query": "deploy"}}),
        make_event(event="mcp.request", server="jira", owner="bob", detail={"method": "tools/list"}),
        make_event(event="mcp.tool_call", server="github", tool="get_issue", owner="alice", detail={"n": 2}),
    ]


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_csv_export_streams_the_filtered_events(auditor_client, exportable):
    response = auditor_client.get("/console/audit/export.csv?server=github")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [int(r["id"]) for r in rows] == [exportable[2].pk, exportable[0].pk]
    assert rows[1]["tool"] == "search"
    assert json.loads(rows[1]["detail"]) == {"arguments": {"query": "deploy"}}
    assert rows[1]["hash"] == exportable[0].hash


def test_jsonl_export_has_one_event_per_line(auditor_client, exportable):
    response = auditor_client.get("/console/audit/export.jsonl?owner=alice")
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert [line["id"] for line in lines] == [exportable[2].pk, exportable[0].pk]
    assert lines[0]["detail"] == {"n": 2}
    assert lines[0]["prev_hash"] == exportable[1].hash


def test_export_without_filter_includes_everything(auditor_client, exportable):
    lines = _body(auditor_client.get("/console/audit/export.jsonl")).splitlines()
    ids = {json.loads(line)["id"] for line in lines}
    assert {row.pk for row in exportable} <= ids


def test_cells_that_look_like_formulas_are_neutralised(auditor_client, make_event):
    make_event(event="mcp.request", actor="=HYPERLINK(\"http://evil\",\"x\")", owner="+cmd|' /C calc'!A0",
               tool="@SUM(1+1)", user_agent="-2+3", server="\tdemo")
    response = auditor_client.get("/console/audit/export.csv?event=mcp.request")
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    row = rows[0]
    assert row["actor"].startswith("'=")
    assert row["owner"].startswith("'+")
    assert row["tool"].startswith("'@")
    assert row["user_agent"].startswith("'-")


def test_export_is_itself_audited(auditor_client, auditor, exportable):
    _body(auditor_client.get("/console/audit/export.csv?server=github&q=deploy"))
    exported = AuditEvent.objects.get(event="audit.exported")
    assert exported.actor == auditor.username
    assert exported.detail == {"format": "csv", "filters": {"server": "github", "q": "deploy"}}


def test_invalid_filter_is_refused(auditor_client, exportable):
    response = auditor_client.get("/console/audit/export.csv?client_ip=nope")
    assert response.status_code == 400


def test_export_needs_a_console_role(client, exportable):
    assert client.get("/console/audit/export.csv").status_code == 302


def test_database_is_read_in_chunks_and_new_events_do_not_shift_the_stream(make_event):
    rows = [make_event(event="mcp.request", detail={"i": i}) for i in range(7)]
    chunks = export_chunks(filters=AuditFilter(event="mcp.request"), chunk_size=3)
    first = next(chunks)
    make_event(event="mcp.request", detail={"i": "late"})
    rest = list(chunks)
    assert [len(chunk) for chunk in [first, *rest]] == [3, 3, 1]
    assert [r["id"] for chunk in [first, *rest] for r in chunk] == [row.pk for row in reversed(rows)]


@pytest.mark.asyncio
async def test_under_asgi_the_export_is_an_async_stream(transactional_db, auditor, exportable):
    from asgiref.sync import sync_to_async

    client = AsyncClient()
    try:
        await sync_to_async(client.force_login)(auditor)
        response = await client.get("/console/audit/export.jsonl?server=github")
        assert response.status_code == 200
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    finally:
        # The ORM ran in asgiref's worker thread; release its connection (PostgreSQL will not
        # drop a test database someone is still connected to).
        await sync_to_async(lambda: connection.close())()
    assert [json.loads(line)["id"] for line in body.splitlines()] == [exportable[2].pk, exportable[0].pk]

"""CSV and JSON Lines exports of a filter, produced chunk by chunk (never whole in memory).

``sync_stream`` serves WSGI and the test client; ``async_stream`` serves daphne, where Django
would otherwise collect a synchronous iterator into a list before sending it. Each chunk is one
database read (``audit.selectors.export_chunks``), crossed into the event loop once per chunk.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async

from audit.selectors import AuditFilter, export_chunks

CSV_COLUMNS = [
    "id", "created_at", "event", "outcome", "status", "actor", "token", "token_jti", "owner",
    "server", "tool", "session_id", "client_ip", "user_agent", "latency_ms", "detail",
    "prev_hash", "hash",
]
# A cell a spreadsheet would evaluate (OWASP "CSV injection"): starts with = + - @ or a control.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

Render = Callable[[list[dict[str, Any]]], bytes]


def csv_safe(value: Any) -> Any:
    """A cell value no spreadsheet will run as a formula (a leading quote makes it text)."""
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The exported form of one event: ISO times, the token's display prefix, no objects."""
    out = dict(row)
    created = out.get("created_at")
    if isinstance(created, datetime):
        out["created_at"] = created.isoformat()
    jti = out.get("token_jti") or ""
    out["token"] = f"gth_{jti[:8]}…" if jti else ""
    return out


def render_csv_header() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_COLUMNS)
    return buffer.getvalue().encode()


def render_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        plain = _plain(row)
        plain["detail"] = json.dumps(plain.get("detail"), ensure_ascii=False, sort_keys=True)
        writer.writerow([csv_safe("" if plain.get(c) is None else plain.get(c)) for c in CSV_COLUMNS])
    return buffer.getvalue().encode()


def render_jsonl(rows: list[dict[str, Any]]) -> bytes:
    lines = []
    for row in rows:
        plain = _plain(row)
        lines.append(json.dumps({c: plain.get(c) for c in CSV_COLUMNS}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode() if lines else b""


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str
    header: Callable[[], bytes]
    render: Render


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", render_csv_header, render_csv),
    "jsonl": ExportFormat("application/x-ndjson; charset=utf-8", "jsonl", lambda: b"", render_jsonl),
}


def sync_stream(*, filters: AuditFilter, fmt: str) -> Iterator[bytes]:
    export = FORMATS[fmt]
    if header := export.header():
        yield header
    for rows in export_chunks(filters=filters):
        yield export.render(rows)


async def async_stream(*, filters: AuditFilter, fmt: str) -> AsyncIterator[bytes]:
    export = FORMATS[fmt]
    if header := export.header():
        yield header
    chunks = export_chunks(filters=filters)
    # thread_sensitive: the same thread (and database connection) as the view that started it.
    next_chunk = sync_to_async(lambda: next(chunks, None))
    while (rows := await next_chunk()) is not None:
        yield export.render(rows)

"""The one audit writer. Nothing else creates or deletes AuditEvent rows.

Two ways in, one chain:

- ``record()`` — synchronous, for admin and security events. The event is appended inside the
  caller's transaction (committed with the action it describes, rolled back with it) and is in
  the database before ``record()`` returns. Call it as the last statement of a transaction: it
  takes the chain lock, which is held until that transaction ends.
- ``record_later()`` — for the gateway's high-rate events. Never touches the database or waits
  on a lock in the caller: the event is normalised and masked, then queued. A per-process
  writer thread appends queued events in batches (one chain-lock acquisition per batch, every
  ``GATEHOUSE_AUDIT_BATCH_SECONDS``, default 0.5 s). Crash policy: a clean shutdown flushes the
  queue from an ``atexit`` hook — daphne stops its reactor on SIGTERM/SIGINT and exits normally
  (it sends no ASGI lifespan events, so there is no lifespan hook to use); Celery pool processes
  flush on ``worker_process_shutdown`` (see ``audit.apps``). SIGKILL, OOM or power loss lose only
  the gateway events still queued — about one batch interval's worth. Admin and security events
  use ``record()`` and are never in that queue. See ``audit.batching`` for outage behaviour.

Chain appends are serialised across processes: on PostgreSQL by a transaction-scoped advisory
lock, on SQLite by the database's single write lock (settings open every transaction with
``BEGIN IMMEDIATE``). Each committed event is also logged as one JSON line on stdout.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from audit import events
from audit.batching import BatchWriter
from audit.chain import GENESIS_HASH, compute_hash
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent, chain_append, retention_delete
from audit.normalize import OUTCOMES, event_fields
from core import metrics

logger = logging.getLogger("gatehouse.audit")

# Arbitrary constant: the PostgreSQL advisory lock that serialises chain appends.
_CHAIN_LOCK_ID = 7_470_001
# An event queued longer than this before it was written keeps its original time in detail.
_LATE_WRITE = timedelta(seconds=1)
PRUNE_BATCH = 10_000
RETENTION_ACTOR = "system:retention"


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])


def _not_before(fields: dict[str, Any], floor: datetime | None) -> dict[str, Any]:
    """Keep ``created_at`` non-decreasing along the chain (time filters become id ranges)."""
    if floor is None or fields["created_at"] >= floor:
        return fields
    fields = dict(fields)
    if floor - fields["created_at"] > _LATE_WRITE:
        fields["detail"] = {**fields["detail"], "occurred_at": fields["created_at"].isoformat()}
    fields["created_at"] = floor
    return fields


def _append(prepared: list[dict[str, Any]], *, emit_log: bool = True, ids: bool = True) -> list[AuditEvent]:
    """Append prepared events to the chain in one transaction, under the chain lock.

    With ``ids=False`` the caller does not read the rows' ids, so they are inserted without
    returning them (``_insert_without_ids``) unless a row is to be logged at commit.
    """
    with chain_append(), transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-id").values_list("hash", "created_at").first()
        prev_hash, floor = last if last else (GENESIS_HASH, None)
        rows = []
        for item in prepared:
            fields = _not_before(item, floor)
            floor = fields["created_at"]
            digest = compute_hash(prev_hash=prev_hash, fields=fields)
            rows.append(AuditEvent(**fields, prev_hash=prev_hash, hash=digest))
            prev_hash = digest
        # Ids are needed only by the rows logged at commit. The gateway's batches are mostly
        # per-request rows logged at DEBUG, so usually none is (make bench: the ORM's insert was
        # about two thirds of the audit writer's time, and the writer about a sixth of the process's).
        if ids or (emit_log and any(_logged(row) for row in rows)):
            AuditEvent.objects.bulk_create(rows)
        else:
            _insert_without_ids(rows)
    if emit_log:
        transaction.on_commit(partial(_emit, rows))
    return rows


def _insert_without_ids(rows: list[AuditEvent]) -> None:
    """Bulk insert for batches whose ids are not needed (seeding, the gateway's per-request rows):
    COPY on PostgreSQL, one prepared statement on SQLite. Same rows, same chain; a fraction of the
    ORM's cost."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # As Django's own errors (IntegrityError, DataError), so a refused row is handled as
            # one refused by an INSERT would be (``_write_batch`` retries row by row).
            with connection.wrap_database_errors, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([
                        json.dumps(row.detail) if f.name == "detail" else getattr(row, f.attname)
                        for f in fields
                    ])
            return
        placeholders = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 - names from model meta
            [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] for row in rows],
        )


# One log line per gateway request at INFO: the access line (``gatehouse.access``). The audit rows
# every forwarded request also gets (stored all the same) are logged at DEBUG.
_PER_REQUEST = frozenset({events.MCP_REQUEST, events.MCP_TOOL_CALL})


def _level(row: AuditEvent) -> int:
    return logging.DEBUG if row.event in _PER_REQUEST else logging.INFO


def _logged(row: AuditEvent) -> bool:
    return logger.isEnabledFor(_level(row))


def _emit(rows: list[AuditEvent]) -> None:
    for row in rows:
        if _logged(row):
            logger.log(_level(row), row.event, extra={"audit": log_fields(row)})


def log_fields(row: AuditEvent) -> dict[str, Any]:
    """The JSON-safe form of an event, as logged and exported."""
    return {
        "id": row.pk,
        "time": row.created_at.isoformat(),
        "event": row.event,
        "actor": row.actor,
        "token": row.token_display,
        "token_jti": row.token_jti,
        "owner": row.owner,
        "server": row.server,
        "tool": row.tool,
        "session_id": row.session_id,
        "client_ip": row.client_ip,
        "user_agent": row.user_agent,
        "outcome": row.outcome,
        "status": row.status,
        "latency_ms": row.latency_ms,
        "detail": row.detail,
        "hash": row.hash,
    }


def record(
    *,
    event: str,
    actor: str = "",
    token_jti: str = "",
    owner: str = "",
    server: str = "",
    tool: str = "",
    session_id: str = "",
    client_ip: str | None = None,
    user_agent: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    status: int | None = None,
    latency_ms: float | None = None,
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> AuditEvent:
    """Append one event synchronously, in the caller's transaction, and log it on commit."""
    fields = event_fields(
        event=event, actor=actor, token_jti=token_jti, owner=owner, server=server, tool=tool,
        session_id=session_id, client_ip=client_ip, user_agent=user_agent, outcome=outcome,
        status=status, latency_ms=latency_ms, detail=detail, created_at=created_at,
    )
    return _append([fields])[0]


def record_many(items: Iterable[dict[str, Any]], *, batch_size: int = 5_000, emit_log: bool = True) -> int:
    """Append many events (``record()`` keyword dicts) in batches; used by ``seed_audit``."""
    written = 0
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(event_fields(**item))
        if len(batch) >= batch_size:
            written += len(_append(batch, emit_log=emit_log, ids=False))
            batch = []
    if batch:
        written += len(_append(batch, emit_log=emit_log, ids=False))
    return written


# --- Non-blocking path for the gateway's high-rate events -------------------------------------


def _write_batch(queued: list[dict[str, Any]], dropped: int) -> None:
    batch = []
    for raw in queued:
        try:
            batch.append(event_fields(**raw))
        except (InvalidAuditEvent, TypeError, ValueError):
            logger.exception("audit event could not be normalised",
                             extra={"event_name": str(raw.get("event"))})
            dropped += 1
    if dropped:
        batch = [*batch, event_fields(
            event=events.AUDIT_DROPPED, actor="system:audit-writer", outcome=AuditEvent.Outcome.ERROR,
            detail={"dropped": dropped, "reason": "queue full or events refused by the database"},
        )]
    try:
        _append(batch, ids=False)
        _observe_written(queued)
    except (IntegrityError, DataError):
        # One event the database refuses must not take its batch down with it.
        for fields in batch:
            try:
                _append([fields])
            except (IntegrityError, DataError):
                logger.exception("audit event refused by the database", extra={"event_name": fields["event"]})


def _observe_written(queued: list[dict[str, Any]]) -> None:
    """The batch lag (submission to write) of each event, and what still waits behind this batch."""
    series = metrics.get()
    now = timezone.now()
    for raw in queued:
        submitted = raw.get("created_at")
        if isinstance(submitted, datetime):
            series.audit_lag_seconds.observe(max(0.0, (now - submitted).total_seconds()))
    series.audit_pending.set(max(0, _writer.pending() - len(queued)))


def _close_connection() -> None:
    connection.close()


def _batch_interval() -> float:
    return float(getattr(settings, "AUDIT_BATCH_SECONDS", 0.5))


_writer = BatchWriter(
    write=_write_batch,
    interval=_batch_interval,
    retry_on=(OperationalError, InterfaceError),
    on_retry=_close_connection,
    on_idle=_close_connection,
)


_RECORD_KEYWORDS = frozenset(inspect.signature(record).parameters)


def record_later(**fields: Any) -> None:
    """Queue an event without blocking the caller (safe inside the event loop).

    Takes the same keywords as ``record()``; a bad keyword, name or outcome raises here, in the
    caller. Masking and normalisation run in the writer thread, off the event loop; the caller
    hands ``detail`` over and must not mutate it afterwards.
    """
    unknown = fields.keys() - _RECORD_KEYWORDS
    if unknown:
        raise TypeError(f"record_later() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    if not fields.get("event"):
        raise InvalidAuditEvent("An audit event needs a name.")
    if str(fields.get("outcome", AuditEvent.Outcome.SUCCESS)) not in OUTCOMES:
        raise InvalidAuditEvent(f"Unknown outcome {fields['outcome']!r}.")
    fields.setdefault("created_at", timezone.now())
    _writer.submit(fields)


def flush_pending(timeout: float = 5.0) -> bool:
    """Write every queued event now; True when the queue is empty within ``timeout`` seconds."""
    return _writer.flush(timeout)


# --- Retention ---------------------------------------------------------------------------------


def prune_audit(*, now: datetime | None = None) -> int:
    """Delete events older than ``AUDIT_RETENTION_DAYS``; returns how many were deleted.

    The oldest part of the chain is cut off whole. Before deleting, an ``audit.pruned`` checkpoint
    is appended that names the last deleted event's id and hash, so ``verify_audit`` accepts the
    surviving chain, whose first event points at that hash. Deletion runs in batches, so writers
    are never blocked for long; an interrupted run is finished by the next one.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    first_kept = (
        AuditEvent.objects.filter(created_at__gte=cutoff)
        .order_by("created_at", "id").values_list("id", flat=True).first()
    )
    doomed = AuditEvent.objects.all() if first_kept is None else AuditEvent.objects.filter(id__lt=first_kept)
    boundary = doomed.order_by("-id").values_list("id", "hash").first()
    if boundary is None:
        return 0
    last_id, last_hash = boundary
    record(
        event=events.AUDIT_PRUNED,
        actor=RETENTION_ACTOR,
        detail={
            "cutoff": cutoff.isoformat(),
            "retention_days": settings.AUDIT_RETENTION_DAYS,
            "events": AuditEvent.objects.filter(id__lte=last_id).count(),
            "last_deleted_id": last_id,
            "last_deleted_hash": last_hash,
        },
    )
    deleted = 0
    with retention_delete():
        while True:
            oldest = AuditEvent.objects.filter(id__lte=last_id).order_by("id")
            ids = list(oldest.values_list("id", flat=True)[:PRUNE_BATCH])
            if not ids:
                return deleted
            with transaction.atomic():
                count, _ = AuditEvent.objects.filter(id__gte=ids[0], id__lte=ids[-1]).delete()
            deleted += count

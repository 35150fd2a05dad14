"""Checking the hash chain end to end (``manage.py verify_audit``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from audit import events
from audit.chain import CHAINED_FIELDS, GENESIS_HASH, compute_hash
from audit.models import AuditEvent

VERIFY_CHUNK = 5_000


@dataclass(frozen=True)
class ChainBreak:
    event_id: int | None
    event: str
    reason: str


@dataclass(frozen=True)
class ChainReport:
    count: int
    first_id: int | None
    head_id: int | None
    head_hash: str | None
    broken: ChainBreak | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class Checkpoint:
    event_id: int
    last_deleted_id: int
    last_deleted_hash: str


def _checkpoints() -> list[Checkpoint]:
    found = []
    for event_id, detail in AuditEvent.objects.filter(event=events.AUDIT_PRUNED).values_list("id", "detail"):
        if isinstance(detail, dict) and isinstance(detail.get("last_deleted_id"), int):
            found.append(Checkpoint(
                event_id, detail["last_deleted_id"], str(detail.get("last_deleted_hash", ""))
            ))
    return found


def _start_problem(
    row_id: int, prev_hash: str, checkpoints: list[Checkpoint], notes: list[str]
) -> str | None:
    """Why the first surviving event may not start the chain, or None if it may."""
    if prev_hash == GENESIS_HASH:
        return None
    if any(cp.last_deleted_hash == prev_hash and cp.event_id >= row_id for cp in checkpoints):
        return None
    pending = [cp for cp in checkpoints if row_id <= cp.last_deleted_id < cp.event_id]
    if pending:
        notes.append(
            f"Pruning up to event #{pending[-1].last_deleted_id} (checkpoint #{pending[-1].event_id}) "
            "is incomplete; the next prune finishes it."
        )
        return None
    return (
        "the first event's prev_hash is neither the genesis hash nor attested by an audit.pruned "
        "checkpoint: events were deleted from the start of the log"
    )


def verify_chain(*, anchors: Iterable[tuple[int, str]] = (), chunk_size: int = VERIFY_CHUNK) -> ChainReport:
    """Recompute every hash in id order; report the first event where the chain breaks.

    ``anchors`` are (id, hash) pairs recorded elsewhere (the JSON log lines carry both); a
    missing or different anchored event reveals events cut from the end, which a chain alone
    cannot show.
    """
    expected_anchors = dict(anchors)
    checkpoints = _checkpoints()
    notes: list[str] = []
    columns = ("id", *CHAINED_FIELDS, "prev_hash", "hash")
    count = 0
    first_id: int | None = None
    previous: tuple[int, str] | None = None
    cursor: int | None = None  # no lower bound at first: a forged id 0 or -1 must be seen too

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(
            count=count, first_id=first_id, head_id=previous[0] if previous else None,
            head_hash=previous[1] if previous else None, broken=broken, notes=notes,
        )

    while True:
        chunk = AuditEvent.objects.order_by("id").values_list(*columns)
        if cursor is not None:
            chunk = chunk.filter(id__gt=cursor)
        rows = list(chunk[:chunk_size])
        if not rows:
            break
        for values in rows:
            row = dict(zip(columns, values, strict=True))
            row_id, event = row["id"], row["event"]
            if previous is None:
                first_id = row_id
                problem = _start_problem(row_id, row["prev_hash"], checkpoints, notes)
                if problem:
                    return report(ChainBreak(row_id, event, problem))
            elif row["prev_hash"] != previous[1]:
                return report(ChainBreak(
                    row_id, event,
                    f"prev_hash does not match the hash of event #{previous[0]}: events between "
                    f"#{previous[0]} and #{row_id} were deleted or inserted, or #{row_id}'s link was edited",
                ))
            if compute_hash(prev_hash=row["prev_hash"], fields=row) != row["hash"]:
                return report(ChainBreak(
                    row_id, event, "content does not match its hash: the event was edited"
                ))
            if row_id in expected_anchors and expected_anchors.pop(row_id) != row["hash"]:
                return report(ChainBreak(row_id, event, "hash differs from the anchor recorded for it"))
            previous = (row_id, row["hash"])
            count += 1
        cursor = rows[-1][0]
    if expected_anchors:
        missing = min(expected_anchors)
        return report(ChainBreak(missing, "", "anchored event is missing: events were cut from the log"))
    return report(None)

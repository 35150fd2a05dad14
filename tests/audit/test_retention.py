"""Retention: old events are pruned, a checkpoint attests the cut, and the chain still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import events
from audit.integrity import verify_chain
from audit.models import AuditEvent, retention_delete
from audit.services import prune_audit, record


@pytest.fixture
def aged_log(db, settings):
    """100 events 400 to 301 days old, then 20 from the last few days (retention 365 days)."""
    settings.AUDIT_RETENTION_DAYS = 365
    now = timezone.now()
    old = [record(event="mcp.request", detail={"i": i}, created_at=now - timedelta(days=400 - i))
           for i in range(100)]
    recent = [record(event="mcp.request", detail={"i": i}, created_at=now - timedelta(days=3, minutes=-i))
              for i in range(20)]
    return old, recent


def test_events_older_than_retention_are_deleted(aged_log):
    old, recent = aged_log
    cutoff_index = 36  # events 400 to 365 days old
    assert prune_audit() == cutoff_index
    remaining = set(AuditEvent.objects.values_list("id", flat=True))
    assert {row.pk for row in old[:cutoff_index]}.isdisjoint(remaining)
    assert {row.pk for row in old[cutoff_index:] + recent} <= remaining


def test_pruning_leaves_a_checkpoint_and_the_chain_verifies(aged_log):
    old, _ = aged_log
    prune_audit()
    checkpoint = AuditEvent.objects.get(event=events.AUDIT_PRUNED)
    assert checkpoint.detail["last_deleted_id"] == old[35].pk
    assert checkpoint.detail["last_deleted_hash"] == old[35].hash
    assert checkpoint.detail["events"] == 36
    assert checkpoint.detail["retention_days"] == 365
    report = verify_chain()
    assert report.ok, report.broken
    assert report.first_id == old[36].pk


def test_pruning_twice_keeps_the_chain_verifiable(aged_log, settings):
    prune_audit()
    record(event="token.issued")
    settings.AUDIT_RETENTION_DAYS = 30
    assert prune_audit() == 64  # the rest of the 301-400 days old events
    assert AuditEvent.objects.filter(event=events.AUDIT_PRUNED).count() == 2
    assert verify_chain().ok


def test_nothing_to_prune_records_nothing(db, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    record(event="mcp.request")
    assert prune_audit() == 0
    assert not AuditEvent.objects.filter(event=events.AUDIT_PRUNED).exists()


def test_when_everything_is_old_the_checkpoint_starts_the_chain(aged_log):
    far_future = timezone.now() + timedelta(days=2000)
    assert prune_audit(now=far_future) == 120
    assert list(AuditEvent.objects.values_list("event", flat=True)) == [events.AUDIT_PRUNED]
    assert verify_chain().ok


def test_interrupted_prune_still_verifies_and_the_next_run_finishes(aged_log):
    old, _ = aged_log
    # What a crash mid-prune leaves: the checkpoint is written, only part of the range deleted.
    record(event=events.AUDIT_PRUNED, actor="system:retention",
           detail={"last_deleted_id": old[35].pk, "last_deleted_hash": old[35].hash, "events": 36})
    with retention_delete():
        AuditEvent.objects.filter(id__lte=old[20].pk).delete()
    report = verify_chain()
    assert report.ok
    assert any("incomplete" in note for note in report.notes)
    assert prune_audit() == 15
    report = verify_chain()
    assert report.ok
    assert report.notes == []


def test_deleting_old_events_without_a_checkpoint_breaks_the_chain(aged_log):
    old, _ = aged_log
    with retention_delete():
        AuditEvent.objects.filter(id__lte=old[10].pk).delete()
    report = verify_chain()
    assert not report.ok
    assert report.broken.event_id == old[11].pk

"""Audit events cannot be changed or deleted through the ORM, nor written around the writer."""

from __future__ import annotations

import pytest

from audit.exceptions import AppendOnlyViolation
from audit.models import AuditEvent, retention_delete


def test_saving_an_existing_event_is_refused(make_event):
    row = make_event()
    row.actor = "mallory"
    with pytest.raises(AppendOnlyViolation):
        row.save()
    assert AuditEvent.objects.get(pk=row.pk).actor == ""


def test_queryset_update_is_refused(make_event):
    make_event()
    with pytest.raises(AppendOnlyViolation):
        AuditEvent.objects.filter(event="mcp.request").update(actor="mallory")


def test_bulk_update_is_refused(make_event):
    row = make_event()
    row.actor = "mallory"
    with pytest.raises(AppendOnlyViolation):
        AuditEvent.objects.bulk_update([row], ["actor"])


def test_queryset_delete_is_refused(make_event):
    make_event()
    with pytest.raises(AppendOnlyViolation):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


def test_deleting_one_event_is_refused(make_event):
    row = make_event()
    with pytest.raises(AppendOnlyViolation):
        row.delete()
    assert AuditEvent.objects.filter(pk=row.pk).exists()


def test_creating_an_event_outside_the_writer_is_refused(db):
    with pytest.raises(AppendOnlyViolation):
        AuditEvent.objects.create(event="forged", prev_hash="0" * 64, hash="1" * 64)
    with pytest.raises(AppendOnlyViolation):
        AuditEvent.objects.bulk_create([AuditEvent(event="forged", prev_hash="0" * 64, hash="1" * 64)])
    assert not AuditEvent.objects.exists()


def test_retention_escape_hatch_can_delete(make_event):
    make_event()
    with retention_delete():
        deleted, _ = AuditEvent.objects.all().delete()
    assert deleted == 1

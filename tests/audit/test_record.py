"""record(): the synchronous writer for admin and security events."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent
from audit.services import record


def test_record_returns_the_stored_event(db):
    row = record(event="token.revoked", actor="root-admin", token_jti="c" * 32, owner="alice",
                 outcome="success", status=200, detail={"reason": "leaked"})
    stored = AuditEvent.objects.get(pk=row.pk)
    assert (stored.event, stored.actor, stored.owner, stored.detail) == (
        "token.revoked", "root-admin", "alice", {"reason": "leaked"})


def test_event_is_in_the_database_when_record_returns(transactional_db):
    row = record(event="console.login", actor="root-admin")
    with transaction.atomic():  # a fresh read, outside any test transaction
        assert AuditEvent.objects.filter(pk=row.pk).exists()


def test_event_rolls_back_with_the_action_it_describes(transactional_db):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(event="token.issued", actor="root-admin")
        raise RuntimeError("the issue failed after auditing")
    assert not AuditEvent.objects.filter(event="token.issued").exists()


def test_chain_continues_after_a_rolled_back_event(transactional_db):
    first = record(event="token.issued")
    with pytest.raises(RuntimeError), transaction.atomic():
        record(event="token.revoked")
        raise RuntimeError
    second = record(event="token.rotated")
    assert second.prev_hash == first.hash


def test_unknown_outcome_is_refused(db):
    with pytest.raises(InvalidAuditEvent):
        record(event="mcp.request", outcome="maybe")


def test_event_needs_a_name(db):
    with pytest.raises(InvalidAuditEvent):
        record(event="")


def test_overlong_values_are_cut_to_the_column(db):
    row = record(event="mcp.request", user_agent="x" * 1000, tool="t" * 500)
    stored = AuditEvent.objects.get(pk=row.pk)
    assert len(stored.user_agent) == 300 and len(stored.tool) == 200


def test_oversized_detail_is_replaced_by_a_bounded_preview(db):
    row = record(event="mcp.tool_call", detail={"blob": "y" * 100_000})
    assert row.detail["truncated"] is True
    assert len(row.detail["preview"]) < 20_000


def test_out_of_range_status_is_kept_in_detail(db):
    row = record(event="mcp.request", status=70000)
    assert row.status is None
    assert row.detail["status_unparsed"] == 70000

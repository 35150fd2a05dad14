"""Each event's hash covers its content and the previous hash, and survives a database round trip."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from audit.chain import CHAINED_FIELDS, GENESIS_HASH, compute_hash
from audit.models import AuditEvent

TRICKY_DETAIL = {
    "zeta": 1, "alpha": {"nested": [3, 2, 1], "b": None, "a": True},
    "floats": [0.1, 0.1 + 0.2, 1.0, -0.0, 1e-7, 1.5e-300, 123456789.123456, 1e16, 1e300, 2.0**53],
    "specials": [math.nan, math.inf, -math.inf],
    "big_int": 12345678901234567890123,
    "unicode": "naïve café – 東京 – emoji 🛡️ – rtl שלום",
    "control": "nul\x00byte and lone \ud800 surrogate",
    "when": datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "money": Decimal("10.10"),
    "set": {"b", "a"},
    7: "non-string key",
}


def _stored_fields(row: AuditEvent) -> dict:
    return {name: getattr(row, name) for name in CHAINED_FIELDS}


def test_first_event_links_to_genesis_and_each_next_to_its_predecessor(make_event):
    first = make_event(event="token.issued")
    second = make_event(event="token.revoked")
    third = make_event(event="mcp.request")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash


def test_hash_recomputed_from_the_database_matches_for_awkward_values(make_event):
    written = make_event(
        event="mcp.tool_call",
        actor="ci-bot",
        client_ip="2001:DB8:0:0:0:0:0:1",
        user_agent="agent/1.0 (ünïcode)",
        latency_ms=12,
        status=200,
        detail=TRICKY_DETAIL,
        created_at=datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=-7))),
    )
    reread = AuditEvent.objects.get(pk=written.pk)
    assert compute_hash(prev_hash=reread.prev_hash, fields=_stored_fields(reread)) == written.hash
    assert reread.detail == written.detail


def test_ipv4_mapped_address_is_stored_as_plain_ipv4(make_event):
    row = make_event(client_ip="::ffff:192.0.2.7")
    reread = AuditEvent.objects.get(pk=row.pk)
    assert reread.client_ip == "192.0.2.7"
    assert compute_hash(prev_hash=reread.prev_hash, fields=_stored_fields(reread)) == row.hash


def test_unparsable_client_ip_is_kept_in_detail_not_dropped(make_event):
    row = make_event(client_ip="not-an-ip")
    assert row.client_ip is None
    assert row.detail["client_ip_unparsed"] == "not-an-ip"


@pytest.mark.parametrize("field,value", [
    ("created_at", datetime(2030, 1, 1, tzinfo=UTC)), ("event", "token.revoked"), ("actor", "mallory"),
    ("token_jti", "f" * 32), ("owner", "mallory"), ("server", "other"), ("tool", "rm_rf"),
    ("session_id", "s" * 32), ("client_ip", "203.0.113.9"), ("user_agent", "evil/1.0"),
    ("outcome", "denied"), ("status", 500), ("latency_ms", 99.5), ("detail", {"reason": "changed"}),
])
def test_changing_any_chained_field_changes_the_hash(make_event, field, value):
    row = make_event(event="mcp.request", actor="alice", token_jti="a" * 32, owner="alice", server="demo",
                     tool="echo", session_id="b" * 32, client_ip="192.0.2.1", user_agent="ua/1",
                     status=200, latency_ms=5.0, detail={"reason": "original"})
    fields = _stored_fields(row)
    fields[field] = value
    assert compute_hash(prev_hash=row.prev_hash, fields=fields) != row.hash


def test_changing_the_previous_hash_changes_the_hash(make_event):
    row = make_event()
    assert compute_hash(prev_hash="1" * 64, fields=_stored_fields(row)) != row.hash


def test_event_time_never_goes_back_along_the_chain(make_event):
    later = make_event(created_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    earlier = make_event(created_at=datetime(2026, 5, 1, 11, 0, tzinfo=UTC))
    assert earlier.created_at == later.created_at
    assert earlier.detail["occurred_at"] == "2026-05-01T11:00:00+00:00"

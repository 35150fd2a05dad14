"""manage.py seed_audit N: realistic load data with a valid chain."""

from __future__ import annotations

import io

from django.core.management import call_command

from audit.integrity import verify_chain
from audit.models import AuditEvent
from audit.services import record


def test_seeds_n_events_with_a_valid_chain(db):
    out = io.StringIO()
    call_command("seed_audit", "1500", "--batch", "400", stdout=out, stderr=io.StringIO())
    assert "Seeded 1500 audit events" in out.getvalue()
    assert AuditEvent.objects.count() == 1500
    report = verify_chain()
    assert report.ok and report.count == 1500


def test_seeded_events_look_like_gateway_traffic(db):
    call_command("seed_audit", "3000", stdout=io.StringIO(), stderr=io.StringIO())
    names = set(AuditEvent.objects.values_list("event", flat=True).distinct())
    assert {"mcp.request", "mcp.tool_call", "mcp.tool_denied", "auth.denied", "session.created"} <= names
    assert AuditEvent.objects.filter(outcome="denied").exists()
    assert AuditEvent.objects.exclude(token_jti="").values("token_jti").distinct().count() > 20
    times = list(AuditEvent.objects.order_by("id").values_list("created_at", flat=True))
    assert times == sorted(times)


def test_seeding_continues_an_existing_chain(db):
    first = record(event="token.issued")
    call_command("seed_audit", "200", stdout=io.StringIO(), stderr=io.StringIO())
    assert AuditEvent.objects.count() == 201
    assert verify_chain().ok
    assert AuditEvent.objects.order_by("id")[1].prev_hash == first.hash

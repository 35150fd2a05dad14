"""The beat schedule ships audit events: a worker with the webhook configured delivers them."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.services import record
from tests.celery.conftest import wait_until
from tests.support.processes import free_port
from tests.support.siem_receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "siem-secret-from-the-environment"


def test_a_worker_with_beat_delivers_every_event_in_order(start_worker):
    receiver = Receiver(free_port(), secret=SECRET)
    receiver.start()
    try:
        for i in range(4):
            record(event="token.issued", actor="tests-celery", detail={"n": i})
        start_worker(env={"GATEHOUSE_AUDIT_WEBHOOK_URL": receiver.url,
                          "GATEHOUSE_AUDIT_WEBHOOK_SECRET": SECRET,
                          "GATEHOUSE_AUDIT_WEBHOOK_SECONDS": "0.5"})
        ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
        wait_until(lambda: len(receiver.accepted) >= len(ids), timeout=30, what="the events at the receiver")
        record(event="token.revoked", actor="tests-celery")
        wait_until(lambda: len(receiver.accepted) == len(ids) + 1, timeout=30, what="the next event")
        assert [e["id"] for e in receiver.accepted] == list(
            AuditEvent.objects.order_by("id").values_list("id", flat=True))
        assert receiver.bad_signatures == 0
    finally:
        receiver.stop()

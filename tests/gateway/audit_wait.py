"""Waiting for audit rows the gateway writes off its hot path (a batch every ~0.5 s)."""

from __future__ import annotations

import time

from audit.models import AuditEvent


def wait_for_event(*, timeout: float = 10.0, **filters: object) -> AuditEvent:
    deadline = time.monotonic() + timeout
    while True:
        found = AuditEvent.objects.filter(**filters).order_by("-id").first()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            seen = list(AuditEvent.objects.order_by("-id").values_list("event", "status", "detail")[:10])
            raise AssertionError(f"no audit event matching {filters}; latest: {seen}")
        time.sleep(0.1)

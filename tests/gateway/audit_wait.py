"""Waiting for audit rows the gateway writes off its hot path (a batch every ~0.5 s)."""

from __future__ import annotations

from audit.models import AuditEvent
from tests.support.polling import eventually


def wait_for_event(*, timeout: float = 10.0, **filters: object) -> AuditEvent:
    def latest() -> str:
        seen = list(AuditEvent.objects.order_by("-id").values_list("event", "status", "detail")[:10])
        return f"an audit event matching {filters}; latest: {seen}"

    return eventually(lambda: AuditEvent.objects.filter(**filters).order_by("-id").first(),
                      timeout=timeout, every=0.1, what=latest)

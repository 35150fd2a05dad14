"""Audit events shipped to a SIEM: each event POSTed to ``GATEHOUSE_AUDIT_WEBHOOK_URL``, in order.

Contract for receivers (docs/operations.md, "Audit webhook"):

- One event per request, ``Content-Type: application/json``, the body being the event as the JSON
  export has it (``log_fields``: id, time, event, actor, …, ``hash``) plus ``prev_hash``, so a
  receiver can check the chain link by link.
- ``X-Gatehouse-Signature: sha256=<hex>``: HMAC-SHA256 with ``GATEHOUSE_AUDIT_WEBHOOK_SECRET``
  over ``<X-Gatehouse-Timestamp>.<body bytes>``; the timestamp (Unix seconds) is signed so a
  captured request cannot be replayed later as new. ``X-Gatehouse-Event-Id`` is the event id.
- Order: strictly by event id, which is the chain's order (events are appended under the chain
  lock and committed before the next append, so no lower id can commit after a higher one).
- Exactly once: the checkpoint (``WebhookCursor.delivered_id``) advances after each 2xx, and the
  next event is sent only then; a failure stops the run, keeps the checkpoint, and the next try
  waits ``min(2^(failures-1) × interval, max backoff)``. A receiver down for ten minutes gets every
  event once, in order, when it is back. The one way to see an event twice is a crash between the
  receiver's 2xx and the checkpoint write; the event id is the idempotency key for that case.
- One run at a time across every worker: a run holds a lease on the cursor row (a conditional
  UPDATE, no long transaction, so SQLite's writers are never blocked by a slow receiver) and
  checks it before each checkpoint write; a run that lost its lease stops.

Events the retention job prunes before they were delivered are not sent (they no longer exist);
the console's lag shows such a backlog long before retention (365 days by default) could matter.
Nothing about a delivery is audited (it would feed itself); failures are logged, without the URL
(it may carry credentials) and without the secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent, WebhookCursor
from audit.services import log_fields

logger = logging.getLogger("gatehouse.audit")

BATCH = 200
# A run stops taking new events after this long, leaving the rest to the next run.
RUN_SECONDS = 50.0
LEASE = timedelta(seconds=90)


@dataclass(frozen=True)
class DeliveryRun:
    delivered: int
    outcome: str  # "idle" (nothing to send), "done", "failed", "waiting" (backoff), "busy", "off"


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Gatehouse-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver_audit_webhook() -> DeliveryRun:
    """Send the events after the checkpoint, in order, until none is left, one fails, or time is up."""
    if not settings.AUDIT_WEBHOOK_URL:
        return DeliveryRun(0, "off")
    with contextlib.suppress(IntegrityError):  # two first runs at once: the other one made the row
        WebhookCursor.objects.get_or_create(pk=1)
    now = timezone.now()
    owner = secrets.token_hex(8)
    claimed = WebhookCursor.objects.filter(pk=1).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).update(
        lease_owner=owner, lease_until=now + LEASE
    )
    if not claimed:
        cursor = WebhookCursor.objects.get(pk=1)
        waiting = cursor.next_attempt_at is not None and cursor.next_attempt_at > now
        return DeliveryRun(0, "waiting" if waiting else "busy")
    try:
        return _run(owner)
    finally:
        WebhookCursor.objects.filter(pk=1, lease_owner=owner).update(lease_owner="", lease_until=None)


def _run(owner: str) -> DeliveryRun:
    cursor = WebhookCursor.objects.get(pk=1)
    delivered, after = 0, cursor.delivered_id
    started = time.monotonic()
    with httpx.Client(timeout=settings.AUDIT_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        while time.monotonic() - started < RUN_SECONDS:
            events = list(AuditEvent.objects.filter(id__gt=after).order_by("id")[:BATCH])
            if not events:
                return DeliveryRun(delivered, "done" if delivered else "idle")
            for event in events:
                error = _post(client, event)
                if error:
                    _failed(owner, error, event=event)
                    return DeliveryRun(delivered, "failed")
                if not _advance(owner, event):
                    return DeliveryRun(delivered, "busy")  # the lease ran out: another run took over
                delivered, after = delivered + 1, event.pk
    return DeliveryRun(delivered, "done")


def _post(client: httpx.Client, event: AuditEvent) -> str:
    """POST one event; ``""`` when the receiver accepted it, else a short error without secrets."""
    body = json.dumps({**log_fields(event), "prev_hash": event.prev_hash}, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Gatehouse-Audit-Webhook/1",
        "X-Gatehouse-Event-Id": str(event.pk),
        "X-Gatehouse-Timestamp": timestamp,
        "X-Gatehouse-Signature": sign(secret=settings.AUDIT_WEBHOOK_SECRET, timestamp=timestamp, body=body),
    }
    try:
        response = client.post(settings.AUDIT_WEBHOOK_URL, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__  # never str(exc): it can quote the URL and its credentials
    if 200 <= response.status_code < 300:
        return ""
    return f"HTTP {response.status_code}"


def _advance(owner: str, event: AuditEvent) -> bool:
    now = timezone.now()
    return bool(WebhookCursor.objects.filter(pk=1, lease_owner=owner).update(
        delivered_id=event.pk, delivered_at=now, failures=0, failing_since=None, last_error="",
        next_attempt_at=None, lease_until=now + LEASE,
    ))


def _failed(owner: str, error: str, *, event: AuditEvent) -> None:
    cursor = WebhookCursor.objects.get(pk=1)
    failures = cursor.failures + 1
    now = timezone.now()
    wait = min(settings.AUDIT_WEBHOOK_SECONDS * 2 ** (failures - 1),
               settings.AUDIT_WEBHOOK_MAX_BACKOFF_SECONDS)
    WebhookCursor.objects.filter(pk=1, lease_owner=owner).update(
        failures=failures, failing_since=cursor.failing_since or now, last_error=error[:200],
        next_attempt_at=now + timedelta(seconds=wait),
    )
    logger.warning("audit webhook delivery failed", extra={
        "error": error, "failures": failures, "event_id": event.pk, "retry_in_s": wait,
    })


@dataclass(frozen=True)
class WebhookStatus:
    """What the console shows of the webhook (``webhook_status``)."""

    configured: bool
    delivered_id: int
    delivered_at: datetime | None
    pending: int
    lag_seconds: float
    failing_since: datetime | None
    last_error: str
    next_attempt_at: datetime | None


def webhook_status() -> WebhookStatus:
    """Where delivery stands: events waiting, and how old the oldest of them is (the lag)."""
    if not settings.AUDIT_WEBHOOK_URL:
        return WebhookStatus(configured=False, delivered_id=0, delivered_at=None, pending=0, lag_seconds=0.0,
                             failing_since=None, last_error="", next_attempt_at=None)
    cursor = WebhookCursor.objects.filter(pk=1).first() or WebhookCursor(pk=1)
    waiting = AuditEvent.objects.filter(id__gt=cursor.delivered_id)
    oldest = waiting.order_by("id").values_list("created_at", flat=True).first()
    return WebhookStatus(
        configured=bool(settings.AUDIT_WEBHOOK_URL),
        delivered_id=cursor.delivered_id,
        delivered_at=cursor.delivered_at,
        pending=waiting.count(),
        lag_seconds=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
        failing_since=cursor.failing_since,
        last_error=cursor.last_error,
        next_attempt_at=cursor.next_attempt_at,
    )

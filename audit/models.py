"""Append-only audit events with a hash chain.

Rows are written only by ``audit.services`` (which holds the chain lock and computes hashes) and
deleted only by the retention service. The ORM refuses everything else: ``save()`` of an existing
row, ``QuerySet.update()``/``delete()``, ``Model.delete()``, and writes outside the writer. Raw SQL
can still tamper with rows; that is what the hash chain and ``verify_audit`` are for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models

from audit.exceptions import AppendOnlyViolation

_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]{1,64}")

# Which privileged operation the current context is performing: "append" (the chain writer)
# or "prune" (the retention service). Anything else may only read.
_privilege: ContextVar[str] = ContextVar("audit_privilege", default="")


@contextmanager
def _privileged(kind: str) -> Iterator[None]:
    token = _privilege.set(kind)
    try:
        yield
    finally:
        _privilege.reset(token)


def chain_append() -> Any:
    """Context in which ``audit.services`` may insert rows (it holds the chain lock)."""
    return _privileged("append")


def retention_delete() -> Any:
    """The one escape hatch for deleting events: used by ``audit.services.prune_audit``."""
    return _privileged("prune")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyViolation("Audit events cannot be changed.")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise AppendOnlyViolation("Audit events cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        if _privilege.get() != "prune":
            raise AppendOnlyViolation("Audit events are deleted only by the retention service.")
        return super().delete()

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[AuditEvent]:
        if _privilege.get() != "append":
            raise AppendOnlyViolation("Write audit events with audit.services.record().")
        return super().bulk_create(objs, *args, **kwargs)


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        ERROR = "error", "Error"

    # Never earlier than the previous event's: the writer clamps it under the chain lock, so a
    # time range maps exactly to an id range (see audit.selectors).
    created_at = models.DateTimeField()
    event = models.CharField(max_length=64)
    actor = models.CharField(max_length=150, blank=True)
    token_jti = models.CharField(max_length=64, blank=True)
    owner = models.CharField(max_length=150, blank=True)
    server = models.CharField(max_length=64, blank=True)
    tool = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SUCCESS)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        # Every console filter is an equality on one column, paged by id: (column, id) serves
        # "WHERE column = x AND id < cursor ORDER BY id DESC LIMIT n" from the index alone.
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_time_idx"),
            models.Index(fields=["event", "-id"], name="audit_event_idx"),
            # Wider for the per-token usage page: its counts by day, outcome, event and tool read
            # only this index (an index-only scan), not the rows scattered across the table.
            models.Index(
                fields=["token_jti", "-id", "created_at", "event", "outcome", "server", "tool"],
                name="audit_token_idx",
            ),
            models.Index(fields=["owner", "-id"], name="audit_owner_idx"),
            models.Index(fields=["server", "-id"], name="audit_server_idx"),
            models.Index(fields=["tool", "-id"], name="audit_tool_idx"),
            models.Index(fields=["session_id", "-id"], name="audit_session_idx"),
            models.Index(fields=["outcome", "-id"], name="audit_outcome_idx"),
            models.Index(fields=["client_ip", "-id"], name="audit_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("Audit events cannot be changed.")
        if _privilege.get() != "append":
            raise AppendOnlyViolation("Write audit events with audit.services.record().")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyViolation("Audit events are deleted only by the retention service.")

    @property
    def linkable_token_jti(self) -> str:
        """The jti if it is safe in a URL path (an unverified one from a denied request may not be)."""
        return self.token_jti if _URL_SAFE.fullmatch(self.token_jti) else ""

    @property
    def linkable_session_id(self) -> str:
        return self.session_id if _URL_SAFE.fullmatch(self.session_id) else ""

    @property
    def token_display(self) -> str:
        """The token's display prefix (``gth_`` + first 8 of the jti), never the token."""
        return f"gth_{self.token_jti[:8]}…" if self.token_jti else ""


class WebhookCursor(models.Model):
    """Where the audit webhook stands: one row (``pk=1``), the checkpoint of ``audit.webhook``.

    ``delivered_id`` is the last event the receiver accepted (2xx); delivery resumes after it.
    ``lease_owner``/``lease_until`` let one delivery run at a time hold the cursor without a
    long transaction (SQLite would otherwise block every audit write while events are posted).
    """

    delivered_id = models.BigIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit webhook delivered up to #{self.delivered_id}"

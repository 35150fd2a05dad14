"""Gateway sessions: the gateway's own Mcp-Session-Id, bound to one token and one upstream."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from upstreams import transports

# Longer upstream session ids are refused, never cut: a cut id is another (unknown) session.
UPSTREAM_SESSION_ID_MAX = 2048


class SessionBinding(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed by client"
        EXPIRED = "expired", "Expired"
        TERMINATED = "terminated", "Terminated by an admin"
        REVOKED = "revoked", "Ended by token revocation"

    # The Mcp-Session-Id the client sees: minted by the gateway, unguessable.
    id = models.CharField(primary_key=True, max_length=64)
    token = models.ForeignKey("tokens.Token", on_delete=models.CASCADE, related_name="sessions")
    server = models.ForeignKey("upstreams.UpstreamServer", on_delete=models.CASCADE, related_name="sessions")
    # The upstream's own id (Streamable HTTP) or messages path (legacy SSE), which can be long.
    upstream_session_id = models.CharField(max_length=UPSTREAM_SESSION_ID_MAX, blank=True)
    protocol_version = models.CharField(max_length=32, blank=True)
    transport = models.CharField(max_length=16, default=transports.DEFAULT.name)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)  # the console lists recent ends
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="active") | Q(ended_at__isnull=False),
                name="ended_session_has_ended_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id[:8]}… ({self.server_id}, {self.status})"


class SessionEndOutbox(models.Model):
    """Outbox: an upstream DELETE owed for an ended session.

    Written in the transaction that ends the session (together with its audit event), so a crash
    can lose neither. Delivered afterwards by whoever ended the session and, for anything left
    over (a crash, a failing upstream), by every session sweep: a row is claimed with a lease
    (``claimed_until``), the DELETE sent, and the row marked done. A worker that dies between
    sending and marking done leaves the lease to expire and the DELETE is sent again: delivery is
    at least once, and a repeated DELETE is harmless (the upstream answers 404, which settles it).
    """

    session = models.OneToOneField(
        SessionBinding, on_delete=models.CASCADE, primary_key=True, related_name="upstream_delete"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    upstream_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(done_at__isnull=True), name="outbox_pending_due"
            ),
        ]

    def __str__(self) -> str:
        return f"DELETE for {self.session_id[:8]}… ({'done' if self.done_at else 'pending'})"

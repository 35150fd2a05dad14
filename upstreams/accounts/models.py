"""A connected account: one person's own credential for one server, encrypted at rest.

The model owns what a connection is: usable or not (``is_usable``), due for a refresh
(``needs_refresh``); the workflows are in ``upstreams.accounts.services``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

# An access token is refreshed this long before it expires, so no request carries a dying one.
REFRESH_MARGIN = timedelta(seconds=60)


class ConnectedAccount(models.Model):
    class Status(models.TextChoices):
        CONNECTED = "connected"
        # The provider refused a refresh: the person must connect again (told on My access).
        BROKEN = "broken"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connected_accounts"
    )
    server = models.ForeignKey(
        "upstreams.UpstreamServer", on_delete=models.CASCADE, related_name="connected_accounts"
    )
    # The server's user credential kind when connected (``upstreams.user_credentials``).
    kind = models.CharField(max_length=16)
    # Fernet-encrypted: the pasted key, or the OAuth access token. Never rendered or audited.
    secret_encrypted = models.TextField()
    refresh_encrypted = models.TextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED)
    broken_reason = models.CharField(max_length=200, blank=True, default="")
    connected_at = models.DateTimeField()
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["server", "user"]
        constraints = [models.UniqueConstraint(fields=["user", "server"], name="connected_account_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.server_id} ({self.status})"

    @property
    def change_key(self) -> str:
        """The change feed's key (``core.changes.ACCOUNT``) of this person's credential for this server."""
        return account_key(user_id=self.user_id, server_id=self.server_id)

    def is_usable(self, now: datetime) -> bool:
        """Connected, and either never expiring or not yet expired (a refresh may be due)."""
        return self.status == self.Status.CONNECTED and (self.expires_at is None or self.expires_at > now)

    @property
    def refresh_due_at(self) -> datetime | None:
        """When to refresh: ``REFRESH_MARGIN`` before expiry, or half-way through a shorter life
        (a token good for 30 s would otherwise be refreshed on every request)."""
        if self.expires_at is None:
            return None
        life = self.expires_at - (self.refreshed_at or self.connected_at)
        return self.expires_at - min(REFRESH_MARGIN, life / 2)

    def needs_refresh(self, now: datetime) -> bool:
        due = self.refresh_due_at
        return (
            self.status == self.Status.CONNECTED and bool(self.refresh_encrypted)
            and due is not None and due <= now
        )


def account_key(*, user_id: int, server_id: int) -> str:
    return f"{user_id}:{server_id}"

"""Grants, OAuth clients, connections and the one-time secrets of the OAuth flow.

Codes and refresh tokens are stored as SHA-256 digests only: the database never holds a secret
that works. A ``Connection`` is one person's consent to one client for one resource: the family
every code, refresh token and access token of that consent belongs to, revoked as one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AccessGrant(models.Model):
    """Who (a person or a group) may get tokens for which servers and tools, without an admin.

    ``tools`` null means every tool of the server; ``max_ttl_seconds`` null means the OAuth
    default lifetime applies. A person's ceiling is the union of their own and their groups'.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="access_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="access_grants"
    )
    server = models.CharField(max_length=64)
    tools = models.JSONField(null=True, blank=True)
    max_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["server", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="access_grant_has_one_subject",
            ),
            models.UniqueConstraint(fields=["user", "server"], name="one_grant_per_user_and_server"),
            models.UniqueConstraint(fields=["group", "server"], name="one_grant_per_group_and_server"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.server}"

    @property
    def subject(self) -> str:
        if self.user is not None:
            return f"user {self.user.get_username()}"
        return f"group {self.group.name if self.group else '?'}"


class OAuthClient(models.Model):
    """A client that may ask people for consent: registered (RFC 7591), by an admin, or a
    Client ID Metadata Document whose https URL is its ``client_id``."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Registered dynamically (RFC 7591)"
        CONSOLE = "console", "Registered by an admin"
        DOCUMENT = "document", "Client ID Metadata Document"

    client_id = models.CharField(max_length=2048, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=200)
    redirect_uris = models.JSONField(default=list)
    # "none" for public clients; a confidential client keeps only its secret's digest.
    token_endpoint_auth_method = models.CharField(max_length=32, default="none")
    secret_digest = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    registered_from = models.GenericIPAddressField(null=True, blank=True)
    # When the metadata document was last fetched (documents are re-read after a while).
    fetched_at = models.DateTimeField(null=True, blank=True)
    disabled = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id[:60]})"

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


class ConnectionQuerySet(models.QuerySet):
    def live(self) -> ConnectionQuerySet:
        return self.filter(revoked_at__isnull=True)


class Connection(models.Model):
    """One person's consent to one client for one resource: a token family, ended as one."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_connections"
    )
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="connections")
    resource = models.CharField(max_length=2048)
    # The consented scope: {"server": null | ["tool", ...]}, within the grant at consent time.
    scope = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=200, blank=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} via {self.client.name}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class AuthorizationCode(models.Model):
    """A one-time code, bound to its client, redirect URI, PKCE challenge and resource."""

    digest = models.CharField(max_length=64, unique=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="codes")
    redirect_uri = models.CharField(max_length=2048)
    code_challenge = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"code for connection {self.connection_id}"

    def is_usable(self, now: datetime | None = None) -> bool:
        return self.used_at is None and self.expires_at > (now or timezone.now())


class RefreshToken(models.Model):
    """An opaque refresh token, rotated on every use; ``rotated_at`` set means spent."""

    digest = models.CharField(max_length=64, unique=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="refresh_tokens")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token for connection {self.connection_id}"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.rotated_at is None and self.expires_at > now and self.connection.revoked_at is None


REFRESH_TOKEN_LIFETIME = timedelta(days=30)

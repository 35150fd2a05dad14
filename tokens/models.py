"""Signing keys, tokens and API keys (upstream servers live in ``upstreams``).

Models hold invariants (constraints, ``clean``); workflows live in ``tokens.services``.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SigningKey(models.Model):
    class Algorithm(models.TextChoices):
        EDDSA = "EdDSA", "EdDSA (Ed25519)"
        ES256 = "ES256", "ES256 (P-256)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active (signs new tokens)"
        RETIRED = "retired", "Retired (verifies only)"

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices)
    # Fernet-encrypted PKCS#8 PEM; wiped when the key is retired (it only verifies from then on).
    private_key_encrypted = models.TextField(blank=True)
    public_key_pem = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_signing_key"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "retired"]), name="signing_key_status_known"
            ),
            models.CheckConstraint(
                condition=Q(algorithm__in=["EdDSA", "ES256"]), name="signing_key_algorithm_known"
            ),
            models.CheckConstraint(
                condition=Q(status="retired") | ~Q(private_key_encrypted=""),
                name="active_signing_key_has_private_key",
            ),
            models.CheckConstraint(
                condition=Q(status="active") | Q(retired_at__isnull=False),
                name="retired_signing_key_has_retired_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.status})"


class Token(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ROTATED = "rotated", "Rotated (in grace period or done)"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    jti = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tokens")
    # {"server-name": null | ["tool", ...]}: null means every tool of that server.
    scope = models.JSONField()
    display_prefix = models.CharField(max_length=16, db_index=True)
    # Null once a retired key is pruned (only after every token it signed is unusable).
    signing_key = models.ForeignKey(
        SigningKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # A default, not auto_now_add, so the row carries exactly the iat written into the JWT.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.CharField(max_length=150, blank=True, help_text="Actor that issued it.")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Empty: never.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A rotated token stays usable until grace_until, then counts as revoked.
    grace_until = models.DateTimeField(null=True, blank=True)
    successor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="predecessor"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)
    revoke_reason = models.CharField(max_length=200, blank=True)
    api_key = models.ForeignKey(
        "tokens.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens",
        help_text="The API key that minted it, if minted through the REST API.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="revoked") | Q(revoked_at__isnull=False),
                name="revoked_token_has_revoked_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="rotated") | Q(successor__isnull=False, grace_until__isnull=False),
                name="rotated_token_has_successor",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "rotated", "revoked", "expired"]),
                name="token_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(successor=models.F("pk")), name="token_is_not_its_own_successor"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("created_at")),
                name="token_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    def status_at(self, now: datetime | None = None) -> str:
        """The status a user should see: an active row past its expiry reads as expired."""
        now = now or timezone.now()
        if self.status == self.Status.ACTIVE and self.expires_at is not None and self.expires_at <= now:
            return self.Status.EXPIRED
        return self.status

    @property
    def effective_status(self) -> str:
        return self.status_at()

    @property
    def in_grace(self) -> bool:
        """A rotated token that still authenticates until ``grace_until``."""
        return (
            self.status == self.Status.ROTATED
            and self.grace_until is not None
            and self.grace_until > timezone.now()
        )

    @property
    def server_names(self) -> list[str]:
        return sorted(self.scope or {})

    def clean(self) -> None:
        if not isinstance(self.scope, dict) or not self.scope:
            raise ValidationError({"scope": "A token must be scoped to at least one server."})
        for server, tools in self.scope.items():
            if tools is not None and (
                not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools)
            ):
                raise ValidationError({"scope": f"Tools for {server!r} must be a list of names or null."})


class ApiKey(models.Model):
    """A credential for the REST API; minted tokens can never exceed its ceiling."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys")
    # Public part of "gthk_<key_id>_<secret>", used for the indexed lookup.
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=128, help_text="SHA-256 of the secret part, hex.")
    # Same shape as Token.scope; null ceiling means any server the owner may use.
    scope_ceiling = models.JSONField(null=True, blank=True)
    max_ttl_seconds = models.PositiveIntegerField(default=30 * 86400)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(max_ttl_seconds__gt=0), name="apikey_max_ttl_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (gthk_{self.key_id}_…)"

    @property
    def display_prefix(self) -> str:
        return f"gthk_{self.key_id}_…"

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

# Identity assertions (``tokens.assertions``): JWTs Gatehouse signs for upstream servers, naming who
# calls. Their JOSE ``typ`` tells them apart from access tokens (``typ: JWT``), which
# ``authenticate_token`` refuses them by. One may be signed by a key a moment before it is retired
# (the signer read it as active just before), so a retired key stays published (JWKS) for at
# least ``RETIRED_KEY_MIN_SECONDS``: longer than any assertion it signed lives, with a margin.
IDENTITY_ASSERTION_TYP = "gatehouse-identity+jwt"
IDENTITY_ASSERTION_LIFETIME_SECONDS = 300
RETIRED_KEY_MIN_SECONDS = IDENTITY_ASSERTION_LIFETIME_SECONDS + 10


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


class TokenQuerySet(models.QuerySet):
    """Token queries by liveness; the rule itself is stated once, on ``Token``."""

    def usable(self, now: datetime | None = None, *, unexpired_at: datetime | None = None) -> TokenQuerySet:
        """Tokens that still authenticate at ``now``: the rows ``Token.is_usable(now)`` accepts."""
        return self.filter(Token.usable_q(now or timezone.now(), unexpired_at=unexpired_at))

    def dead(self, now: datetime | None = None) -> TokenQuerySet:
        """Tokens that no longer authenticate at ``now``: revoked, rotated out or expired."""
        return self.filter(Token.dead_q(now or timezone.now()))

    def expired_still_active(self, now: datetime | None = None) -> TokenQuerySet:
        """Rows still labelled active that are dead at ``now``: ``dead()`` of the active rows,
        which for them means ``expires_at`` has passed. The expiry sweep's work list, spelled so
        the ``expires_at`` index can serve it."""
        return self.filter(status=Token.Status.ACTIVE, expires_at__lte=now or timezone.now())


class Token(models.Model):
    """An issued token's row: the JWT itself is never stored.

    Liveness, whether the token still authenticates, is decided here and nowhere else. The rule,
    on the row (the JWT's own ``exp`` is checked before it, with leeway, by ``tokens.services``):

    * ``active``: usable until ``expires_at`` (empty: never);
    * ``rotated``: usable until ``grace_until``, and never past ``expires_at`` either (a grace
      period does not lengthen a token's life);
    * ``revoked``, ``expired``: never.

    ``expires_at`` passing does not change ``status``: the expiry sweep relabels such rows
    ``expired`` a little later, which is why every check reads both. Whoever asks (the verifier
    on each request and each open-stream re-check, the session sweep ending a dead token's
    sessions, the expiry sweep, signing-key pruning, the console's status filters) asks
    ``liveness``/``is_usable`` of a row or ``Token.objects.usable()``/``dead()`` (``usable_q``/
    ``dead_q`` across a join) of the database, so a token refused at the door never keeps a
    session, and a signing key is never pruned while a token it signed still works.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ROTATED = "rotated", "Rotated (in grace period or done)"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    class Liveness(models.TextChoices):
        """What ``liveness`` says of a row: usable, or which part of the rule refuses it."""

        USABLE = "usable", "Usable"
        REVOKED = "revoked", "Revoked"
        ROTATED_OUT = "rotated_out", "Rotated, grace period over"
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
    oauth_connection = models.ForeignKey(
        "tokens.Connection", null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens",
        help_text="The OAuth consent it was issued under, if a client got it through /oauth/token.",
    )

    objects = TokenQuerySet.as_manager()

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

    # --- liveness (the rule is in the class docstring) ---

    def liveness(self, now: datetime | None = None) -> Token.Liveness:
        """Whether this row authenticates at ``now`` and, if not, which part of the rule refuses it.

        Checked in this order, so a revoked token that has also expired reads as revoked.
        """
        now = now or timezone.now()
        if self.status == self.Status.REVOKED:
            return self.Liveness.REVOKED
        if self.status == self.Status.ROTATED and (self.grace_until is None or self.grace_until <= now):
            return self.Liveness.ROTATED_OUT
        if self.status == self.Status.EXPIRED or (self.expires_at is not None and self.expires_at <= now):
            return self.Liveness.EXPIRED
        # Active, or rotated within its grace period (``token_status_known`` allows nothing else).
        return self.Liveness.USABLE

    def usable_until(self) -> datetime | None:
        """When this row stops authenticating by time alone: its expiry, or the end of its grace
        period if it was rotated (None: not by time). Caches of a verdict end there."""
        grace = self.grace_until if self.status == self.Status.ROTATED else None
        ends = [t for t in (self.expires_at, grace) if t]
        return min(ends) if ends else None

    def is_usable(self, now: datetime | None = None) -> bool:
        """True while the token authenticates; agrees with ``Token.objects.usable(now)``."""
        return self.liveness(now) == self.Liveness.USABLE

    @staticmethod
    def usable_q(now: datetime, *, through: str = "", unexpired_at: datetime | None = None) -> Q:
        """``is_usable(now)`` as a filter; ``through`` names the relation when asked across a join
        (``"token"`` on a session).

        ``unexpired_at`` (default ``now``) judges ``expires_at`` at an earlier instant, never the
        grace period: signing-key pruning keeps a key while a JWT it signed may still pass the
        signature check, whose ``exp`` has a leeway.
        """
        def field(lookup: str) -> str:
            return f"{through}__{lookup}" if through else lookup

        unexpired = Q(**{field("expires_at__isnull"): True}) | Q(
            **{field("expires_at__gt"): unexpired_at or now}
        )
        in_force = Q(**{field("status"): Token.Status.ACTIVE}) | Q(
            **{field("status"): Token.Status.ROTATED, field("grace_until__gt"): now}
        )
        return in_force & unexpired

    @staticmethod
    def dead_q(now: datetime, *, through: str = "") -> Q:
        """The complement of ``usable_q(now)``, spelled out rather than negated: a plain OR of
        comparisons, free of the NULL guards a negation adds, that sweeps can run across a join."""
        def field(lookup: str) -> str:
            return f"{through}__{lookup}" if through else lookup

        rotated_out = Q(**{field("status"): Token.Status.ROTATED}) & (
            Q(**{field("grace_until__isnull"): True}) | Q(**{field("grace_until__lte"): now})
        )
        return (
            Q(**{field("status__in"): [Token.Status.REVOKED, Token.Status.EXPIRED]})
            | rotated_out
            | Q(**{field("expires_at__lte"): now})
        )

    def status_at(self, now: datetime | None = None) -> str:
        """The status a user should see: an active row past its expiry reads as expired."""
        if self.status == self.Status.ACTIVE and self.liveness(now) == self.Liveness.EXPIRED:
            return self.Status.EXPIRED
        return self.status

    @property
    def effective_status(self) -> str:
        return self.status_at()

    @property
    def in_grace(self) -> bool:
        """A rotated token whose grace period still runs: the console's "(grace)" label.

        Whether it authenticates is ``is_usable``, which also holds it to ``expires_at``.
        """
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


# Trusted issuers live in their own module; imported here so Django registers them with this app.
from tokens.issuers.models import DeniedSubject, TrustedIssuer  # noqa: E402
from tokens.oauth.models import (  # noqa: E402
    AccessGrant,
    AuthorizationCode,
    Connection,
    OAuthClient,
    RefreshToken,
)

__all__ = [
    "AccessGrant", "ApiKey", "AuthorizationCode", "Connection", "DeniedSubject", "OAuthClient",
    "RefreshToken", "SigningKey", "Token", "TrustedIssuer",
]

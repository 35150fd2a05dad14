"""Trusted issuers and the subjects cut off from them.

An issuer's row holds everything a verification needs without asking the provider more than for
its keys: the exact ``iss`` URL, the ``aud`` it must name, the algorithms allowed (asymmetric
only), the ``jwks_uri`` found by discovery when the issuer was added, the scope its tokens may
reach and the claim rules they must meet.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tokens.issuers.claim_rules import ClaimRule, rules_from_stored
from tokens.scope import TokenScope

# What a provider may sign with. ``none`` and HS* are never allowed: an HMAC "key" published in a
# JWKS is public, so anyone could sign with it (the classic key-confusion attack).
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
DEFAULT_ALGORITHMS = ["RS256", "ES256"]


class TrustedIssuer(models.Model):
    name = models.SlugField(max_length=50, unique=True, help_text="Short name; owners become NAME:sub.")
    issuer = models.URLField(max_length=500, unique=True, help_text="The exact `iss` of its tokens.")
    audience = models.CharField(max_length=500, help_text="The `aud` its tokens must carry.")
    jwks_uri = models.URLField(max_length=500)
    algorithms = models.JSONField(default=list)
    # Same shape as Token.scope: {"server": null | ["tool", ...]}.
    scope = models.JSONField()
    # [["claim", "value"], ...], all must match.
    rules = models.JSONField(default=list, blank=True)
    max_ttl_seconds = models.PositiveIntegerField(default=3600)
    direct = models.BooleanField(default=False, help_text="The gateway accepts its JWTs as bearer tokens.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_ttl_seconds__gt=0), name="issuer_max_ttl_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def token_scope(self) -> TokenScope:
        return TokenScope.from_mapping(self.scope)

    @property
    def claim_rules(self) -> list[ClaimRule]:
        return rules_from_stored(self.rules)

    @property
    def max_ttl(self) -> timedelta:
        return timedelta(seconds=self.max_ttl_seconds)

    def owner_name(self, subject: str) -> str:
        """The Gatehouse owner of what this issuer's subject ``subject`` gets: ``NAME:sub``."""
        return f"{self.name}:{subject}"

    def clean(self) -> None:
        bad = [alg for alg in self.algorithms if alg not in ASYMMETRIC_ALGORITHMS]
        if bad or not self.algorithms:
            raise ValidationError(
                {"algorithms": f"Allowed: {', '.join(ASYMMETRIC_ALGORITHMS)} (never none or HS*)."}
            )


class DeniedSubject(models.Model):
    """A subject of an issuer that may no longer exchange or present tokens (``revoke_subject``)."""

    issuer = models.ForeignKey(TrustedIssuer, on_delete=models.CASCADE, related_name="denied_subjects")
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="denied_subject_once"),
        ]

    def __str__(self) -> str:
        return f"{self.issuer.name}:{self.subject}"


def issuer_fields(issuer: TrustedIssuer) -> dict[str, Any]:
    """What audit rows and the console show of an issuer (no secrets: it has none)."""
    return {
        "issuer": issuer.issuer, "audience": issuer.audience, "algorithms": issuer.algorithms,
        "scope": issuer.scope, "rules": [f"{claim}={value}" for claim, value in issuer.rules],
        "max_ttl_seconds": issuer.max_ttl_seconds, "direct": issuer.direct, "enabled": issuer.enabled,
    }

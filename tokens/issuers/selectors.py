"""Reads of trusted issuers for the console, the commands and the API."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from tokens.exceptions import IssuerNotFound
from tokens.issuers.models import DeniedSubject, TrustedIssuer


def issuer_by_name(name: str) -> TrustedIssuer:
    issuer = TrustedIssuer.objects.filter(name=name).first()
    if issuer is None:
        raise IssuerNotFound(f"No trusted issuer named {name!r}.")
    return issuer


def issuer_list() -> QuerySet[TrustedIssuer]:
    return TrustedIssuer.objects.annotate(denied=Count("denied_subjects")).order_by("name")


def denied_subjects(issuer: TrustedIssuer) -> QuerySet[DeniedSubject]:
    return issuer.denied_subjects.order_by("-created_at")

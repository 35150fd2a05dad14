"""The Gatehouse owner of an external subject: a user named ``ISSUER:sub`` that cannot sign in.

Tokens minted for a subject (exchange) or taken from it (direct) belong to this user, so every
rule about owners holds for them unchanged: revoking the subject deactivates the user and
``authenticate_token`` refuses every token of an inactive owner. Such a user has no usable
password and no staff rights; a local account that happens to have the name (Django's username
rules do not allow ``:``, so only a hand-made one could) is never taken over.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import User

from tokens.exceptions import ExternalTokenRefused
from tokens.issuers.models import TrustedIssuer

_USERNAME_MAX = 150


def subject_username(issuer: TrustedIssuer, subject: str) -> str:
    name = issuer.owner_name(subject)
    if len(name) <= _USERNAME_MAX:
        return name
    # Too long for a username: keep a readable start and make it unique with a digest.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"{name[:_USERNAME_MAX - 34]}~{digest}"


def subject_user(issuer: TrustedIssuer, subject: str) -> User:
    """The owner for ``subject``, created on first use."""
    user, created = User.objects.get_or_create(username=subject_username(issuer, subject))
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif user.has_usable_password() or user.is_staff or user.is_superuser:
        raise ExternalTokenRefused(
            "The subject's owner name belongs to a local account here; refused.",
            reason="owner_conflict", issuer=issuer.name,
        )
    return user

"""Trusted issuers: add, enable or disable, remove; cut a subject off and restore it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit import events
from audit.services import record
from core import changes
from tokens.exceptions import InvalidTokenRequest, InvalidTransition
from tokens.issuers.claim_rules import ClaimRule
from tokens.issuers.keys import ProviderUnavailable, check_provider_url, discover_jwks_uri, provider_keys
from tokens.issuers.models import DEFAULT_ALGORITHMS, DeniedSubject, TrustedIssuer, issuer_fields
from tokens.issuers.subject_owners import subject_username
from tokens.models import Token
from tokens.scope import TokenScope
from tokens.services import revoke_token
from upstreams.models import UpstreamServer


@dataclass(frozen=True)
class IssuerSettings:
    name: str
    issuer: str
    audience: str
    scope: TokenScope
    rules: Sequence[ClaimRule] = ()
    max_ttl: timedelta = timedelta(hours=1)
    direct: bool = False
    algorithms: Sequence[str] = tuple(DEFAULT_ALGORITHMS)


def create_issuer(*, config: IssuerSettings, actor: str) -> TrustedIssuer:
    """Add a trusted issuer, after reading its discovery document (which must name it exactly)."""
    check_provider_url(config.issuer)
    if not config.audience.strip():
        raise InvalidTokenRequest("An issuer needs the audience its tokens must carry (--audience).")
    if config.max_ttl <= timedelta(0) or config.max_ttl > settings.TOKEN_MAX_TTL:
        raise InvalidTokenRequest(
            f"max-ttl must be positive and at most {int(settings.TOKEN_MAX_TTL.total_seconds())} seconds."
        )
    _check_servers(config.scope)
    try:
        jwks_uri = discover_jwks_uri(config.issuer)
    except ProviderUnavailable as exc:
        raise InvalidTokenRequest(f"Discovery failed: {exc}") from exc
    issuer = TrustedIssuer(
        name=config.name, issuer=config.issuer, audience=config.audience.strip(), jwks_uri=jwks_uri,
        algorithms=list(dict.fromkeys(config.algorithms)), scope=config.scope.to_mapping(),
        rules=[[rule.claim, rule.value] for rule in config.rules],
        max_ttl_seconds=int(config.max_ttl.total_seconds()), direct=config.direct,
        created_by=actor[:150],
    )
    try:
        issuer.full_clean()
    except ValidationError as exc:
        problems = (f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise InvalidTokenRequest("; ".join(problems)) from exc
    try:
        with transaction.atomic():
            issuer.save()
            record(event=events.ISSUER_CREATED, actor=actor,
                   detail={"name": issuer.name, **issuer_fields(issuer)})
    except IntegrityError as exc:
        raise InvalidTokenRequest("An issuer with that name or URL exists already.") from exc
    return issuer


def _check_servers(scope: TokenScope) -> None:
    known = set(UpstreamServer.objects.filter(name__in=scope.servers).values_list("name", flat=True))
    unknown = sorted(set(scope.servers) - known)
    if unknown:
        raise InvalidTokenRequest(f"Unknown server(s): {', '.join(unknown)}.")


def set_issuer_enabled(*, issuer: TrustedIssuer, enabled: bool, actor: str) -> TrustedIssuer:
    """Disable (or enable again) an issuer: while disabled, none of its tokens are accepted."""
    with transaction.atomic():
        issuer.enabled = enabled
        issuer.save(update_fields=["enabled"])
        record(event=events.ISSUER_UPDATED, actor=actor, detail={"name": issuer.name, "enabled": enabled})
    provider_keys.forget(issuer.jwks_uri)
    return issuer


def delete_issuer(*, issuer: TrustedIssuer, actor: str) -> None:
    """Remove an issuer. Tokens already minted from its subjects stay until they expire or are revoked."""
    with transaction.atomic():
        record(event=events.ISSUER_DELETED, actor=actor,
               detail={"name": issuer.name, **issuer_fields(issuer)})
        issuer.delete()
    provider_keys.forget(issuer.jwks_uri)


def revoke_subject(*, issuer: TrustedIssuer, subject: str, actor: str) -> int:
    """Cut ``subject`` off: no more exchanges or direct use, and every token it holds revoked.

    Returns how many tokens were revoked. Its owner user is deactivated too, so anything it
    holds that this missed is refused by ``authenticate_token`` all the same.
    """
    subject = subject.strip()
    if not subject:
        raise InvalidTokenRequest("Name the subject (the sub claim) to revoke.")
    with transaction.atomic():
        _, created = DeniedSubject.objects.get_or_create(
            issuer=issuer, subject=subject, defaults={"created_by": actor[:150]}
        )
        if not created:
            raise InvalidTransition(f"The subject {subject!r} of {issuer.name!r} is already revoked.")
        username = subject_username(issuer, subject)
        live = list(Token.objects.usable().filter(owner__username=username).select_related("owner"))
        for token in live:
            revoke_token(token=token, actor=actor, reason=f"subject revoked at {issuer.name}")
        User.objects.filter(username=username).update(is_active=False)
        changes.publish(changes.TOKEN)  # no signal for a bulk update: every verdict is forgotten
        record(
            event=events.SUBJECT_REVOKED, actor=actor, owner=username,
            detail={"issuer": issuer.name, "subject": subject, "tokens_revoked": len(live)},
        )
    return len(live)


def restore_subject(*, issuer: TrustedIssuer, subject: str, actor: str) -> None:
    """Take a subject off the deny list; tokens revoked with it stay revoked."""
    with transaction.atomic():
        deleted, _ = DeniedSubject.objects.filter(issuer=issuer, subject=subject).delete()
        if not deleted:
            raise InvalidTransition(f"The subject {subject!r} of {issuer.name!r} is not revoked.")
        username = subject_username(issuer, subject)
        User.objects.filter(username=username).update(is_active=True)
        changes.publish(changes.TOKEN)
        record(event=events.SUBJECT_RESTORED, actor=actor, owner=username,
               detail={"issuer": issuer.name, "subject": subject})

"""Reads for tokens, upstream servers and signing keys (console, commands, API, gateway)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.subjects import TokenSubject
from core.secrets_mask import TOKEN_PREFIX
from tokens import crypto
from tokens.exceptions import AmbiguousTokenReference, TokenNotFound
from tokens.models import SigningKey, Token

# Status filter values the console and API offer; "grace" is a rotated token still accepted.
STATUS_FILTERS = ("active", "grace", "rotated", "revoked", "expired")

LIFECYCLE_EVENTS = (
    events.TOKEN_ISSUED,
    events.TOKEN_ROTATED,
    events.TOKEN_REVOKED,
    events.TOKEN_EXPIRED,
    events.TOKEN_EXPIRING,
)


# --- tokens ----------------------------------------------------------------------------------


def _status_q(status: str, now: datetime) -> Q:
    """What the user sees (``Token.status_at``): active and grace are the usable tokens, split by
    status; expired includes active rows past their expiry that the sweep has not relabelled yet."""
    if status == "active":
        return Q(status=Token.Status.ACTIVE) & Token.usable_q(now)
    if status == "grace":
        return Q(status=Token.Status.ROTATED) & Token.usable_q(now)
    if status == "rotated":
        return Q(status=Token.Status.ROTATED)
    if status == "revoked":
        return Q(status=Token.Status.REVOKED)
    if status == "expired":
        return Q(status=Token.Status.EXPIRED) | (Q(status=Token.Status.ACTIVE) & Token.dead_q(now))
    raise ValueError(f"unknown status filter {status!r}")


def token_list(
    *,
    search: str = "",
    owner: str = "",
    server: str = "",
    status: str = "",
    expiring_within: timedelta | None = None,
    now: datetime | None = None,
) -> QuerySet[Token]:
    """Tokens, newest first, narrowed by the console's filters (all optional)."""
    now = now or timezone.now()
    qs = Token.objects.select_related("owner", "successor", "oauth_connection__client").order_by(
        "-created_at", "-pk"
    )
    search = search.strip()
    if search:
        prefix = search.rstrip("…").removesuffix("...")
        prefix = prefix.removeprefix(TOKEN_PREFIX)
        qs = qs.filter(
            Q(name__icontains=search)
            | Q(owner__username__icontains=search)
            | (Q(jti__startswith=prefix.lower()) if prefix else Q(pk__in=[]))
        )
    if owner:
        qs = qs.filter(owner__username=owner)
    if server:
        qs = qs.filter(scope__has_key=server)
    if status:
        qs = qs.filter(_status_q(status, now))
    if expiring_within is not None:
        qs = qs.filter(status=Token.Status.ACTIVE, expires_at__lte=now + expiring_within).usable(now)
    return qs


def token_owner_names() -> list[str]:
    """Usernames that own at least one token (the owner filter's choices)."""
    return list(
        Token.objects.order_by("owner__username")
        .values_list("owner__username", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class StatusChange:
    """One line of a token's status history, read from the audit log."""

    at: datetime
    event: str
    actor: str
    summary: str
    event_id: int


def _summarise(event: AuditEvent) -> str:
    detail: dict[str, Any] = event.detail or {}
    if event.event == events.TOKEN_ISSUED:
        expires = detail.get("expires_at") or "never"
        if detail.get("rotated_from"):
            return f"Issued by rotating {detail['rotated_from']}, expires {expires}."
        return f"Issued, expires {expires}."
    if event.event == events.TOKEN_ROTATED:
        successor = detail.get("successor_display_prefix", "")
        return f"Rotated; successor {successor}, old token accepted until {detail.get('grace_until', '?')}."
    if event.event == events.TOKEN_REVOKED:
        reason = detail.get("reason") or "no reason given"
        return f"Revoked: {reason}."
    if event.event == events.TOKEN_EXPIRED:
        return "Expired."
    if event.event == events.TOKEN_EXPIRING:
        return "Expiry warning sent."
    return event.event


def token_history(*, token: Token) -> list[StatusChange]:
    """Lifecycle events of ``token``, oldest first."""
    rows = AuditEvent.objects.filter(token_jti=token.jti, event__in=LIFECYCLE_EVENTS).order_by("id")
    return [
        StatusChange(
            at=row.created_at,
            event=row.event,
            actor=row.actor,
            summary=_summarise(row),
            event_id=row.pk,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class TokenDetail:
    token: Token
    predecessor: Token | None
    history: list[StatusChange]


def token_detail(*, token_id: int) -> TokenDetail:
    token = (
        Token.objects.select_related("owner", "successor", "signing_key", "oauth_connection__client")
        .filter(pk=token_id)
        .first()
    )
    if token is None:
        raise TokenNotFound()
    predecessor = Token.objects.filter(successor=token).first()
    return TokenDetail(token=token, predecessor=predecessor, history=token_history(token=token))


_JTI_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


def _jti_of_full_token(raw: str) -> str | None:
    """The jti claim of a pasted ``gth_`` token, read without verifying (only to find its row)."""
    try:
        payload_b64 = raw[len(TOKEN_PREFIX):].split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
        jti = payload["jti"]
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error):
        return None
    return jti if isinstance(jti, str) and _JTI_RE.match(jti) else None


def find_token(*, reference: str) -> Token:
    """Resolve what a person types: a jti, a display prefix ``gth_1a2b3c4d`` or a whole token.

    Raises ``TokenNotFound`` or ``AmbiguousTokenReference`` (naming the candidates, never secrets).
    """
    ref = reference.strip().rstrip("…").removesuffix("...")
    if ref.startswith(TOKEN_PREFIX) and "." in ref:
        jti = _jti_of_full_token(ref)
        token = Token.objects.filter(jti=jti).first() if jti else None
        if token is None:
            raise TokenNotFound("No token matches that token string.")
        return token
    prefix = ref.removeprefix(TOKEN_PREFIX)
    if not _JTI_RE.match(prefix):
        raise TokenNotFound(f"{reference!r} is not a jti or a display prefix like gth_1a2b3c4d.")
    exact = Token.objects.filter(jti=prefix).first()
    if exact is not None:
        return exact
    matches = list(Token.objects.filter(jti__startswith=prefix).select_related("owner")[:6])
    if not matches:
        raise TokenNotFound(f"No token matches {reference!r}.")
    if len(matches) > 1:
        listed = ", ".join(f"{t.jti} ({t.name}, {t.owner.get_username()})" for t in matches[:5])
        raise AmbiguousTokenReference(
            f"{reference!r} matches more than one token: {listed}. Use the full jti."
        )
    return matches[0]


# --- signing keys ----------------------------------------------------------------------------


def jwks() -> dict[str, list[dict[str, Any]]]:
    """Public keys of every key that may still verify a token (active first)."""
    keys = SigningKey.objects.order_by("status", "-created_at").values_list(
        "kid", "algorithm", "public_key_pem"
    )
    return {
        "keys": [crypto.public_jwk(pem=pem, kid=kid, algorithm=alg) for kid, alg, pem in keys]
    }


def token_subject(jti: str) -> TokenSubject | None:
    """What the audit pages show about the token an event names (installed into ``audit.subjects``)."""
    token = Token.objects.filter(jti=jti).select_related("owner").first()
    if token is None:
        return None
    return TokenSubject(
        pk=token.pk, name=token.name, status_display=token.get_status_display(),
        owner=token.owner.get_username(),
    )

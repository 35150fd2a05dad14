"""Token expiry over time: mark tokens past ``expires_at`` expired, warn owners before that.

Both run from Celery beat on every worker that has beat on, possibly several at once, so each
claims its tokens with row locks (``SKIP LOCKED`` on PostgreSQL; SQLite's IMMEDIATE transactions
serialise them) and never acts on a token twice.

Sessions are not ended here: the gateway's session sweep (``gateway.services.expire_sessions``)
ends those of every dead token, relabelled yet or not, so this layer never calls into the gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.services import record
from tokens.models import Token

logger = logging.getLogger("gatehouse.tokens")

# The actor written on audit events of the periodic sweeps (the gateway's session sweep too).
SWEEP_ACTOR = "system:expiry"

_EMAIL_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class TokenExpiry:
    """One sweep: the tokens it marked expired."""

    expired_jtis: list[str]


@dataclass(frozen=True)
class ExpiryWarning:
    token_id: int
    jti: str
    expires_at: datetime


def _claim(queryset: QuerySet[Token]) -> QuerySet[Token]:
    return queryset.select_for_update(skip_locked=True, of=("self",))


def expire_tokens(*, now: datetime | None = None, batch_size: int = 200) -> TokenExpiry:
    """Relabel ``expired`` the rows still marked active that are dead at ``now``, and audit each.

    They already authenticate nowhere (``Token.liveness`` reads ``expires_at``); this makes the
    status say so and records ``token.expired`` once. Rotated tokens keep their status.
    """
    now = now or timezone.now()
    expired: list[Token] = []
    while True:
        with transaction.atomic():
            due = Token.objects.expired_still_active(now)
            batch = list(_claim(due).select_related("owner").order_by("expires_at")[:batch_size])
            Token.objects.filter(pk__in=[t.pk for t in batch]).update(status=Token.Status.EXPIRED)
            for token in batch:
                record(
                    event=events.TOKEN_EXPIRED,
                    actor=SWEEP_ACTOR,
                    token_jti=token.jti,
                    owner=token.owner.get_username(),
                    detail={
                        "name": token.name,
                        "display_prefix": token.display_prefix,
                        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
                    },
                )
        if not batch:
            break
        expired.extend(batch)
    return TokenExpiry(expired_jtis=[t.jti for t in expired])


def warn_expiring_tokens(
    *, now: datetime | None = None, window: timedelta | None = None
) -> list[ExpiryWarning]:
    """Audit ``token.expiring`` once per active token that expires within ``window``.

    A token whose whole lifetime is shorter than the window (a one-hour CI token) is not
    warned about: its owner chose that expiry moments ago. The audit event is the record that
    the warning went out, so a token is never warned twice, whichever worker runs the sweep.
    """
    now = now or timezone.now()
    window = window if window is not None else timedelta(seconds=settings.TOKEN_WARN_BEFORE_SECONDS)
    warnings: list[ExpiryWarning] = []
    with transaction.atomic():
        due = (
            Token.objects.filter(status=Token.Status.ACTIVE)
            .usable(now)
            .filter(expires_at__lte=now + window, created_at__lt=F("expires_at") - window)
        )
        candidates = list(_claim(due).select_related("owner").order_by("expires_at"))
        # A separate statement after the locks are held: it sees every warning committed by a
        # worker that held one of these rows before us.
        warned = set(
            AuditEvent.objects.filter(
                event=events.TOKEN_EXPIRING, token_jti__in=[t.jti for t in candidates]
            ).values_list("token_jti", flat=True)
        )
        for token in candidates:
            expires_at = token.expires_at
            if token.jti in warned or expires_at is None:  # None: the query already excludes it
                continue
            record(
                event=events.TOKEN_EXPIRING,
                actor=SWEEP_ACTOR,
                token_jti=token.jti,
                owner=token.owner.get_username(),
                detail={
                    "name": token.name,
                    "display_prefix": token.display_prefix,
                    "expires_at": expires_at.isoformat(),
                    "seconds_left": int((expires_at - now).total_seconds()),
                },
            )
            warnings.append(ExpiryWarning(token_id=token.pk, jti=token.jti, expires_at=expires_at))
    return warnings


def email_expiry_warning(*, token_id: int) -> bool:
    """Email the owner that their token expires soon, when email is configured and they have one.

    Returns whether a message was sent. SMTP errors propagate so the caller can retry.
    """
    if not settings.EMAIL_URL:
        return False
    token = Token.objects.select_related("owner").filter(pk=token_id).first()
    if token is None or token.status != Token.Status.ACTIVE or not token.owner.email:
        return False
    expires = token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if token.expires_at else "never"
    send_mail(
        subject=f"Gatehouse: your token {token.name!r} expires {expires}",
        message=(
            f"Your Gatehouse token {token.name!r} ({token.display_prefix}) expires at {expires}.\n\n"
            f"Rotate it or issue a new one before then: {settings.PUBLIC_URL}/console/tokens/\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[token.owner.email],
        connection=get_connection(timeout=_EMAIL_TIMEOUT_SECONDS),
    )
    logger.info("token expiry warning emailed", extra={"token": token.display_prefix})
    return True

"""Direct use: a trusted issuer's JWT presented to the gateway as the bearer token itself.

Only ``tokens.services.authenticate_token`` calls this. The JWT is verified like an exchanged
one (``verification.verify_external``), then stands for a ``Token`` row of its own, made on first
sight: jti ``sha256(issuer id, the JWT's jti)`` (or of the whole JWT when it has no jti), owner
``ISSUER:sub``, the issuer's scope, expiry the JWT's ``exp``. From there it is a token like any
other: the same liveness rule, rate limit, session binding, audit trail, and ``revoke_token``
(console or CLI) refuses it from then on, as ``revoke_subject`` refuses its subject.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import events
from audit.services import record
from core import changes
from core.secrets_mask import display_prefix_for_jti
from tokens.issuers.subject_owners import subject_user
from tokens.issuers.verification import ExternalIdentity, unverified_issuer, verify_external
from tokens.models import Token, TrustedIssuer


def is_direct_candidate(raw: str) -> bool:
    """Whether ``raw`` claims to come from an issuer trusted here (verified later, fully)."""
    issuer = unverified_issuer(raw)
    return issuer is not None and TrustedIssuer.objects.filter(issuer=issuer, enabled=True).exists()


def _jti_for(identity: ExternalIdentity, raw: str) -> str:
    source = identity.jti or raw
    return hashlib.sha256(f"{identity.issuer.pk}:{source}".encode()).hexdigest()[:32]


def direct_token_row(raw: str) -> Token:
    """The ``Token`` row standing for this external JWT, verified now; made on first sight."""
    identity = verify_external(raw, direct=True)
    jti = _jti_for(identity, raw)
    row = Token.objects.select_related("owner").filter(jti=jti).first()
    if row is not None:
        if row.scope != identity.issuer.scope:  # the issuer's scope was edited since
            Token.objects.filter(pk=row.pk).update(scope=identity.issuer.scope)
            changes.publish(changes.TOKEN, [row.jti])
            row.scope = identity.issuer.scope
        return row
    try:
        with transaction.atomic():
            return _create_row(identity, jti)
    except IntegrityError:  # another request made it first
        return Token.objects.select_related("owner").get(jti=jti)


def _create_row(identity: ExternalIdentity, jti: str) -> Token:
    issuer = identity.issuer
    owner = subject_user(issuer, identity.subject)
    now = timezone.now()
    row = Token.objects.create(
        jti=jti, name=f"{issuer.name} (direct)"[:100], owner=owner, scope=issuer.scope,
        display_prefix=display_prefix_for_jti(jti),
        created_at=min(now, identity.expires_at - timedelta(seconds=1)),
        created_by=f"issuer:{issuer.name}", expires_at=identity.expires_at,
    )
    record(
        event=events.TOKEN_ISSUED, actor=f"issuer:{issuer.name}", token_jti=jti, owner=owner.get_username(),
        detail={
            "name": row.name, "display_prefix": row.display_prefix, "scope": row.scope,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "via": "direct", "issuer": issuer.name, "subject": identity.subject,
            "subject_token_jti": identity.jti,
        },
    )
    return row

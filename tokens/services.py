"""Token lifecycle: issue, rotate, revoke, verify (signing keys: ``tokens.signing_keys``).

Every decision about whether a credential is good is made by ``authenticate_token``; the
gateway, the REST API and open-stream re-checks all call it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import events
from audit.services import record
from core import metrics
from core.secrets_mask import TOKEN_PREFIX, display_prefix_for_jti
from tokens import crypto
from tokens.exceptions import (
    IdentityAssertionPresented,
    InvalidTokenRequest,
    InvalidTransition,
    TokenExpired,
    TokenMalformed,
    TokenRevoked,
    TokenUnknown,
)
from tokens.issuers import direct
from tokens.models import IDENTITY_ASSERTION_TYP, Token
from tokens.oauth.models import Connection
from tokens.scope import TokenScope
from tokens.signing_keys import IDENTITY_ASSERTION_REFUSAL, get_active_signing_key, verify_signature
from upstreams.models import UpstreamServer


@dataclass(frozen=True)
class IssuedToken:
    """A freshly minted token: ``secret`` is the full ``gth_`` string, shown once."""

    token: Token
    secret: str


@dataclass(frozen=True)
class AuthenticatedToken:
    token_id: int
    jti: str
    name: str
    owner_id: int
    owner_username: str
    scope: TokenScope
    expires_at: datetime | None
    display_prefix: str
    # Past this the token no longer authenticates by time alone (expiry, end of a rotation's grace).
    usable_until: datetime | None = None
    # Got through OAuth (tokens/oauth): a tool its owner's grant allows may be asked for (step-up).
    via_oauth: bool = False


# --- issue / rotate / revoke -----------------------------------------------------------------


def _validate_scope(scope: TokenScope) -> None:
    known = dict(UpstreamServer.objects.filter(name__in=scope.servers).values_list("name", "enabled"))
    unknown = sorted(set(scope.servers) - set(known))
    if unknown:
        raise InvalidTokenRequest(f"Unknown server(s): {', '.join(unknown)}.")
    disabled = sorted(name for name, enabled in known.items() if not enabled)
    if disabled:
        raise InvalidTokenRequest(f"Server(s) disabled: {', '.join(disabled)}.")


def _resolve_ttl(ttl: timedelta | None) -> timedelta | None:
    if ttl is None:
        if not settings.TOKEN_ALLOW_NEVER_EXPIRES:
            raise InvalidTokenRequest(
                "Tokens that never expire are disabled (GATEHOUSE_TOKEN_ALLOW_NEVER_EXPIRES)."
            )
        return None
    if ttl <= timedelta(0):
        raise InvalidTokenRequest("ttl must be positive.")
    if ttl > settings.TOKEN_MAX_TTL:
        raise InvalidTokenRequest(
            f"ttl exceeds the maximum of {int(settings.TOKEN_MAX_TTL.total_seconds())} seconds."
        )
    return ttl


def _mint(
    *,
    name: str,
    owner: User,
    scope: TokenScope,
    ttl: timedelta | None,
    actor: str,
    api_key_id: int | None = None,
    oauth_connection_id: int | None = None,
) -> IssuedToken:
    key = get_active_signing_key()
    now = timezone.now().replace(microsecond=0)
    jti = secrets.token_hex(16)
    expires_at = now + ttl if ttl is not None else None
    claims: dict[str, object] = {
        "iss": settings.TOKEN_ISSUER,
        "aud": settings.TOKEN_AUDIENCE,
        "sub": owner.get_username(),
        "jti": jti,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "scope": scope.to_mapping(),
    }
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    encoded = jwt.encode(
        claims,
        crypto.load_private_key(key.private_key_encrypted),
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"},
    )
    token = Token.objects.create(
        jti=jti,
        name=name,
        owner=owner,
        scope=scope.to_mapping(),
        display_prefix=display_prefix_for_jti(jti),
        signing_key=key,
        created_at=now,
        created_by=actor[:150],
        expires_at=expires_at,
        api_key_id=api_key_id,
        oauth_connection_id=oauth_connection_id,
    )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}{encoded}")


def issue_token(
    *,
    name: str,
    owner: User,
    scope: TokenScope,
    ttl: timedelta | None,
    actor: str,
    api_key_id: int | None = None,
    client_ip: str | None = None,
    provenance: dict[str, object] | None = None,
    oauth_connection_id: int | None = None,
) -> IssuedToken:
    """Mint a token. ``ttl=None`` means never expires (only when settings allow it).

    ``provenance`` goes into the ``token.issued`` row: how a token not minted by a person came
    to be (a token exchange names the issuer, subject and the subject token's jti).
    """
    name = name.strip()
    if not name:
        raise InvalidTokenRequest("A token needs a name.")
    max_length = Token._meta.get_field("name").max_length
    if max_length is not None and len(name) > max_length:
        raise InvalidTokenRequest("A token name is at most 100 characters.")
    _validate_scope(scope)
    ttl = _resolve_ttl(ttl)
    with transaction.atomic():
        issued = _mint(name=name, owner=owner, scope=scope, ttl=ttl, actor=actor, api_key_id=api_key_id,
                       oauth_connection_id=oauth_connection_id)
        record(
            event=events.TOKEN_ISSUED,
            actor=actor,
            token_jti=issued.token.jti,
            owner=owner.get_username(),
            client_ip=client_ip,
            detail={
                "name": name,
                "display_prefix": issued.token.display_prefix,
                "scope": scope.to_mapping(),
                "expires_at": issued.token.expires_at.isoformat() if issued.token.expires_at else None,
                "api_key_id": api_key_id,
                **(provenance or {}),
            },
        )
    return issued


def _rotation_ttl(token: Token) -> timedelta | None:
    """The successor lives as long as the original was meant to, within today's limits."""
    if token.expires_at is None:
        return None if settings.TOKEN_ALLOW_NEVER_EXPIRES else settings.TOKEN_DEFAULT_TTL
    lifetime = token.expires_at - token.created_at
    return max(min(lifetime, settings.TOKEN_MAX_TTL), timedelta(seconds=1))


def rotate_token(
    *, token: Token, actor: str, grace: timedelta = timedelta(0), client_ip: str | None = None
) -> IssuedToken:
    """Mint a successor with the same scope; the old token works until ``grace`` has passed."""
    if grace < timedelta(0):
        raise InvalidTokenRequest("grace must not be negative.")
    if grace > settings.TOKEN_MAX_TTL:
        raise InvalidTokenRequest("grace is longer than the maximum token lifetime.")
    with transaction.atomic():
        token = Token.objects.select_for_update().select_related("owner").get(pk=token.pk)
        if token.status != Token.Status.ACTIVE:
            raise InvalidTransition(f"Only an active token can be rotated (this one is {token.status}).")
        now = timezone.now()
        successor = _mint(
            name=token.name,
            owner=token.owner,
            scope=TokenScope.from_mapping(token.scope),
            ttl=_rotation_ttl(token),
            actor=actor,
            api_key_id=token.api_key_id,
            oauth_connection_id=token.oauth_connection_id,
        )
        token.status = Token.Status.ROTATED
        token.successor = successor.token
        token.grace_until = now + grace
        token.save(update_fields=["status", "successor", "grace_until"])
        new = successor.token
        record(
            event=events.TOKEN_ISSUED,
            actor=actor,
            token_jti=new.jti,
            owner=token.owner.get_username(),
            client_ip=client_ip,
            detail={
                "name": new.name,
                "display_prefix": new.display_prefix,
                "scope": new.scope,
                "expires_at": new.expires_at.isoformat() if new.expires_at else None,
                "api_key_id": new.api_key_id,
                "rotated_from": token.display_prefix,
            },
        )
        record(
            event=events.TOKEN_ROTATED,
            actor=actor,
            token_jti=token.jti,
            owner=token.owner.get_username(),
            client_ip=client_ip,
            detail={
                "successor_jti": successor.token.jti,
                "successor_display_prefix": successor.token.display_prefix,
                "grace_seconds": int(grace.total_seconds()),
                "grace_until": token.grace_until.isoformat(),
            },
        )
    return successor


def revoke_token(
    *, token: Token, actor: str, reason: str = "", client_ip: str | None = None
) -> Token:
    """Revoke now; open streams notice within a second (they re-check through authenticate)."""
    with transaction.atomic():
        token = Token.objects.select_for_update().select_related("owner").get(pk=token.pk)
        if token.status in (Token.Status.REVOKED, Token.Status.EXPIRED):
            raise InvalidTransition(f"The token is already {token.status}.")
        token.status = Token.Status.REVOKED
        token.revoked_at = timezone.now()
        token.revoked_by = actor[:150]
        token.revoke_reason = reason[:200]
        token.save(update_fields=["status", "revoked_at", "revoked_by", "revoke_reason"])
        if token.oauth_connection_id is not None:
            # An OAuth access token's refresh tokens end with it (docs/identity.md, OAuth):
            # the client must come back through consent.
            Connection.objects.filter(pk=token.oauth_connection_id, revoked_at__isnull=True).update(
                revoked_at=token.revoked_at, revoke_reason="access token revoked"
            )
            # Access tokens of earlier refreshes of the same consent end with it.
            siblings = Token.objects.usable().filter(oauth_connection_id=token.oauth_connection_id)
            for sibling in siblings.exclude(pk=token.pk):
                revoke_token(token=sibling, actor=actor, reason="its OAuth connection ended",
                             client_ip=client_ip)
        transaction.on_commit(metrics.get().revocations.inc)
        record(
            event=events.TOKEN_REVOKED,
            actor=actor,
            token_jti=token.jti,
            owner=token.owner.get_username(),
            client_ip=client_ip,
            detail={"reason": reason[:200], "display_prefix": token.display_prefix},
        )
    return token


# --- verification ----------------------------------------------------------------------------


def _is_identity_assertion(raw: str) -> bool:
    """Whether ``raw`` (refused anyway) is one of our identity assertions, to name it in the refusal."""
    if len(raw) > 8192 or raw.count(".") != 2:
        return False
    try:
        return jwt.get_unverified_header(raw).get("typ") == IDENTITY_ASSERTION_TYP
    except jwt.PyJWTError:
        return False


def authenticate_token(*, raw_token: str) -> AuthenticatedToken:
    """Verify a credential completely: signature, claims, then its row in the database.

    A ``gth_`` token is checked against our keys; a JWT of a trusted issuer allowed direct use
    against that issuer's keys and rules (``tokens.issuers.direct``), and stands for a row of its
    own. Either way the row must be usable (``Token.liveness``: not revoked, rotated out or
    expired) and its owner active.
    """
    raw_token = (raw_token or "").strip()
    if not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > 8192:
        if _is_identity_assertion(raw_token):
            raise IdentityAssertionPresented(IDENTITY_ASSERTION_REFUSAL)
        if direct.is_direct_candidate(raw_token):
            external = direct.direct_token_row(raw_token)
            return _usable(external, subject=external.owner.get_username())
        raise TokenMalformed("Gatehouse tokens start with gth_.")
    claims = verify_signature(raw_token[len(TOKEN_PREFIX):])
    jti = claims.get("jti")
    if not isinstance(jti, str):
        raise TokenMalformed("The token has no jti.")
    row = (
        Token.objects.select_related("owner")
        .filter(jti=jti)
        .only(
            "id", "jti", "name", "scope", "status", "expires_at", "grace_until", "revoked_at",
            "display_prefix", "oauth_connection_id",
            "owner__id", "owner__username", "owner__is_active",
        )
        .first()
    )
    if row is None:
        raise TokenUnknown()
    return _usable(row, subject=claims.get("sub"))


def _usable(row: Token, *, subject: object) -> AuthenticatedToken:
    """The verdict on a token's row: the liveness rule, then its owner (still active, still ``sub``)."""
    liveness = row.liveness(timezone.now())
    if liveness == Token.Liveness.REVOKED:
        raise TokenRevoked("The token has been revoked.", since=row.revoked_at)
    if liveness == Token.Liveness.ROTATED_OUT:
        raise TokenRevoked("The token was rotated and its grace period is over.", since=row.grace_until)
    if liveness == Token.Liveness.EXPIRED:
        raise TokenExpired()
    if not row.owner.is_active or row.owner.get_username() != subject:
        raise TokenRevoked("The token's owner is no longer active.")
    return AuthenticatedToken(
        token_id=row.pk,
        jti=row.jti,
        name=row.name,
        owner_id=row.owner.pk,
        owner_username=row.owner.get_username(),
        scope=TokenScope.from_mapping(row.scope),
        expires_at=row.expires_at,
        display_prefix=row.display_prefix,
        usable_until=row.usable_until(),
        via_oauth=row.oauth_connection_id is not None,
    )


def mark_tokens_used(used: Mapping[int, datetime], *, min_interval_seconds: int = 60) -> None:
    """Write last-used times noted by the gateway (``{token_id: at}``), at most once a minute per
    token, with one UPDATE for the whole batch (its latest time)."""
    if not used:
        return
    at = max(used.values())
    threshold = at - timedelta(seconds=min_interval_seconds)
    Token.objects.filter(pk__in=list(used)).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=threshold)
    ).update(last_used_at=at)

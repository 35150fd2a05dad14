"""API keys: the REST API's credential for CI, and the token minting it is allowed to do.

A key is ``gthk_<key_id>_<secret>``. Only the SHA-256 of the secret is stored; the key is found by
its public ``key_id`` (unique index) and the secret compared in constant time. A key acts as its
owner, and every token it mints or rotates stays inside the key's scope ceiling and maximum TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.services import record
from core.secrets_mask import API_KEY_PREFIX, MASK
from tokens.exceptions import ApiKeyInvalid, InvalidTokenRequest, InvalidTransition, ScopeCeilingExceeded
from tokens.models import ApiKey, Token
from tokens.scope import TokenScope
from tokens.services import IssuedToken, issue_token, revoke_token, rotate_token
from tokens.ttl import format_ttl
from upstreams.models import UpstreamServer

KEY_ID_LENGTH = 12
SECRET_LENGTH = 40
# Lower-case letters and digits for the id, letters and digits for the secret: no character a
# shell, a URL or a YAML file would treat specially, and matched by the log masker.
_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
# last_used_at is written at most this often per key, to keep a write off every API call.
LAST_USED_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class CreatedApiKey:
    """A freshly created key: ``secret`` is the full ``gthk_`` string, shown once, never stored."""

    api_key: ApiKey
    secret: str


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_actor(api_key: ApiKey) -> str:
    """How a key appears as the actor of what it does: its owner and its non-secret id."""
    return f"{api_key.owner.get_username()} via {api_key.display_prefix}"


def masked_api_key(raw_key: str) -> str:
    """The loggable form of a presented key (``gthk_<key_id>_***``), whatever its shape."""
    key_id, _ = _split(raw_key)
    return f"{API_KEY_PREFIX}{key_id or MASK}_{MASK}"


def _split(raw_key: str) -> tuple[str, str]:
    body = raw_key[len(API_KEY_PREFIX) :] if raw_key.startswith(API_KEY_PREFIX) else ""
    key_id, _, secret = body.partition("_")
    if len(key_id) != KEY_ID_LENGTH or any(c not in _KEY_ID_ALPHABET for c in key_id):
        return "", ""
    return key_id, secret


# --- create / revoke ----------------------------------------------------------------------------


def _validate_ceiling(ceiling: TokenScope | None) -> None:
    if ceiling is None:
        return
    known = set(UpstreamServer.objects.filter(name__in=ceiling.servers).values_list("name", flat=True))
    unknown = sorted(set(ceiling.servers) - known)
    if unknown:
        raise InvalidTokenRequest(f"Unknown server(s) in the ceiling: {', '.join(unknown)}.")


def create_api_key(
    *,
    name: str,
    owner: User,
    scope_ceiling: TokenScope | None,
    max_ttl: timedelta,
    actor: str,
    expires_at: datetime | None = None,
    client_ip: str | None = None,
) -> CreatedApiKey:
    """Create a key; ``scope_ceiling=None`` lets it mint for any server."""
    name = name.strip()
    if not name:
        raise InvalidTokenRequest("An API key needs a name.")
    if max_ttl <= timedelta(0):
        raise InvalidTokenRequest("The maximum TTL must be positive.")
    if max_ttl > settings.TOKEN_MAX_TTL:
        raise InvalidTokenRequest(
            f"The maximum TTL cannot exceed the gateway's token maximum of "
            f"{format_ttl(settings.TOKEN_MAX_TTL)}."
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidTokenRequest("The key's expiry must be in the future.")
    if not owner.is_active:
        raise InvalidTokenRequest("The owner's account is not active.")
    _validate_ceiling(scope_ceiling)
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name,
            owner=owner,
            key_id=key_id,
            secret_hash=_hash_secret(secret),
            scope_ceiling=scope_ceiling.to_mapping() if scope_ceiling is not None else None,
            max_ttl_seconds=int(max_ttl.total_seconds()),
            created_by=actor[:150],
            expires_at=expires_at,
        )
        record(
            event=events.APIKEY_CREATED,
            actor=actor,
            owner=owner.get_username(),
            client_ip=client_ip,
            detail={
                "key": api_key.display_prefix,
                "name": name,
                "scope_ceiling": api_key.scope_ceiling,
                "max_ttl_seconds": api_key.max_ttl_seconds,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return CreatedApiKey(api_key=api_key, secret=f"{API_KEY_PREFIX}{key_id}_{secret}")


def revoke_api_key(
    *, api_key: ApiKey, actor: str, revoke_minted_tokens: bool = False, client_ip: str | None = None
) -> ApiKey:
    """Revoke a key now; optionally also revoke the still-usable tokens it minted."""
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().select_related("owner").get(pk=api_key.pk)
        if api_key.revoked_at is not None:
            raise InvalidTransition("The API key is already revoked.")
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = actor[:150]
        api_key.save(update_fields=["revoked_at", "revoked_by"])
        revoked_tokens: list[str] = []
        if revoke_minted_tokens:
            for token in api_key.tokens.filter(status__in=[Token.Status.ACTIVE, Token.Status.ROTATED]):
                if token.status == Token.Status.ACTIVE or token.in_grace:
                    revoke_token(
                        token=token, actor=actor, reason="its API key was revoked", client_ip=client_ip
                    )
                    revoked_tokens.append(token.display_prefix)
        record(
            event=events.APIKEY_REVOKED,
            actor=actor,
            owner=api_key.owner.get_username(),
            client_ip=client_ip,
            detail={"key": api_key.display_prefix, "name": api_key.name, "revoked_tokens": revoked_tokens},
        )
    return api_key


# --- authenticate -------------------------------------------------------------------------------


def authenticate_api_key(*, raw_key: str) -> ApiKey:
    """The one check of a ``gthk_`` key: known id, matching secret, not revoked or expired."""
    key_id, secret = _split((raw_key or "").strip())
    if not key_id or not secret:
        raise ApiKeyInvalid("Not a well-formed API key (gthk_<id>_<secret>).")
    api_key = ApiKey.objects.select_related("owner").filter(key_id=key_id).first()
    # Hash even for an unknown id, so timing does not tell which ids exist.
    presented = _hash_secret(secret)
    expected = api_key.secret_hash if api_key is not None else _hash_secret(key_id)
    if not hmac.compare_digest(presented, expected) or api_key is None:
        raise ApiKeyInvalid("The API key is not valid.")
    now = timezone.now()
    if api_key.revoked_at is not None:
        raise ApiKeyInvalid("The API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise ApiKeyInvalid("The API key has expired.")
    if not api_key.owner.is_active:
        raise ApiKeyInvalid("The API key's owner is no longer active.")
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_INTERVAL)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def record_api_key_use(
    *,
    api_key: ApiKey,
    method: str,
    path: str,
    status: int,
    client_ip: str | None,
    user_agent: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit one request made with a key (``apikey.used``), whatever its outcome."""
    if status >= 500:
        outcome = AuditEvent.Outcome.ERROR
    elif status >= 400:
        outcome = AuditEvent.Outcome.DENIED
    else:
        outcome = AuditEvent.Outcome.SUCCESS
    record(
        event=events.APIKEY_USED,
        actor=api_key_actor(api_key),
        owner=api_key.owner.get_username(),
        client_ip=client_ip,
        user_agent=user_agent,
        outcome=outcome,
        status=status,
        detail={"key": api_key.display_prefix, "method": method, "path": path, **(detail or {})},
    )


# --- minting within the ceiling -----------------------------------------------------------------


def requested_scope(*, servers: list[str], tools: dict[str, list[str] | None] | None) -> TokenScope:
    """Build a scope from the API's ``servers`` + ``tools`` shape (missing server = all its tools)."""
    tools = tools or {}
    stray = sorted(set(tools) - set(servers))
    if stray:
        raise InvalidTokenRequest(f"tools names server(s) not in servers: {', '.join(stray)}.")
    empty = sorted(s for s, t in tools.items() if t is not None and not t)
    if empty:
        raise InvalidTokenRequest(
            f"tools for {', '.join(empty)} is empty; list at least one tool, or leave the server "
            "out of tools to allow all of its tools."
        )
    return TokenScope.from_mapping({server: tools.get(server) for server in servers})


def _check_ceiling(*, api_key: ApiKey, scope: TokenScope, ttl: timedelta | None) -> None:
    if api_key.scope_ceiling is not None:
        exceeding = scope.exceeding(TokenScope.from_mapping(api_key.scope_ceiling))
        if exceeding:
            raise ScopeCeilingExceeded(
                f"The request exceeds the API key's scope ceiling: {'; '.join(exceeding)}."
            )
    max_ttl = timedelta(seconds=api_key.max_ttl_seconds)
    if ttl is None:
        raise ScopeCeilingExceeded(
            f"ttl 'never' exceeds the API key's maximum TTL of {format_ttl(max_ttl)} "
            f"({api_key.max_ttl_seconds} seconds)."
        )
    if ttl > max_ttl:
        raise ScopeCeilingExceeded(
            f"ttl {format_ttl(ttl)} ({int(ttl.total_seconds())} seconds) exceeds the API key's "
            f"maximum TTL of {format_ttl(max_ttl)} ({api_key.max_ttl_seconds} seconds)."
        )


def default_ttl(*, api_key: ApiKey | None) -> timedelta:
    """The TTL of a mint request that names none: the gateway default, capped by the key."""
    if api_key is None:
        return settings.TOKEN_DEFAULT_TTL
    return min(settings.TOKEN_DEFAULT_TTL, timedelta(seconds=api_key.max_ttl_seconds))


def mint_ci_token(
    *,
    owner: User,
    api_key: ApiKey | None,
    name: str,
    scope: TokenScope,
    ttl: timedelta | None,
    actor: str,
    client_ip: str | None = None,
) -> IssuedToken:
    """Mint a token for ``owner``; with an API key, refuse anything beyond its ceiling or max TTL.

    Unknown servers are reported before the ceiling, so a typo reads as a typo (400), not a refusal.
    """
    known = set(UpstreamServer.objects.filter(name__in=scope.servers).values_list("name", flat=True))
    unknown = sorted(set(scope.servers) - known)
    if unknown:
        raise InvalidTokenRequest(f"Unknown server(s): {', '.join(unknown)}.")
    if api_key is not None:
        _check_ceiling(api_key=api_key, scope=scope, ttl=ttl)
    return issue_token(
        name=name,
        owner=owner,
        scope=scope,
        ttl=ttl,
        actor=actor,
        api_key_id=api_key.pk if api_key is not None else None,
        client_ip=client_ip,
    )


def rotate_ci_token(
    *,
    token: Token,
    api_key: ApiKey | None,
    grace: timedelta,
    actor: str,
    client_ip: str | None = None,
) -> IssuedToken:
    """Rotate; a key may only rotate into a successor its own ceiling would have allowed it to mint."""
    if api_key is not None:
        lifetime = token.expires_at - token.created_at if token.expires_at else None
        _check_ceiling(api_key=api_key, scope=TokenScope.from_mapping(token.scope), ttl=lifetime)
        if grace > timedelta(seconds=api_key.max_ttl_seconds):
            raise ScopeCeilingExceeded(
                f"grace {format_ttl(grace)} exceeds the API key's maximum TTL of "
                f"{format_ttl(timedelta(seconds=api_key.max_ttl_seconds))}."
            )
    return rotate_token(token=token, actor=actor, grace=grace, client_ip=client_ip)

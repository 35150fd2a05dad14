"""Signing keys: the active key that signs tokens, rotation and pruning, and the signature check
of a token against the key its header names (``tokens.services.authenticate_token`` calls it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import events
from audit.services import record
from tokens import crypto
from tokens.exceptions import (
    IdentityAssertionPresented,
    InvalidTokenRequest,
    TokenExpired,
    TokenMalformed,
    TokenSignatureInvalid,
)
from tokens.models import IDENTITY_ASSERTION_TYP, RETIRED_KEY_MIN_SECONDS, SigningKey, Token

# Headers that would let a token pick its own verification key: never honoured.
_FORBIDDEN_JOSE_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
# Said to (and audited for) whoever presents an identity assertion back to the gateway.
IDENTITY_ASSERTION_REFUSAL = (
    "This is an identity assertion Gatehouse signs for an upstream server, not a Gatehouse token."
)


# --- signing keys -----------------------------------------------------------------------------


def _create_signing_key(algorithm: str) -> SigningKey:
    private_key = crypto.generate_private_key(algorithm)
    return SigningKey.objects.create(
        kid=secrets.token_urlsafe(12),
        algorithm=algorithm,
        private_key_encrypted=crypto.encrypt(crypto.private_key_to_pem(private_key)),
        public_key_pem=crypto.public_key_to_pem(private_key.public_key()),
        status=SigningKey.Status.ACTIVE,
    )


def get_active_signing_key() -> SigningKey:
    """The key that signs new tokens; created on first use."""
    key = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            return _create_signing_key(settings.TOKEN_SIGNING_ALGORITHM)
    except IntegrityError:
        # Another process created the first key at the same moment: the unique constraint on
        # the active key let exactly one through, so use that one.
        return SigningKey.objects.get(status=SigningKey.Status.ACTIVE)


def rotate_signing_key(*, actor: str, algorithm: str | None = None) -> SigningKey:
    """Make a new active key; the old one is retired but keeps verifying its tokens.

    The retired key's private half is wiped: from now on it can only verify, never sign.
    """
    algorithm = algorithm or settings.TOKEN_SIGNING_ALGORITHM
    if algorithm not in settings.TOKEN_ALGORITHMS:
        raise InvalidTokenRequest(f"Algorithm must be one of {settings.TOKEN_ALGORITHMS}.")
    with transaction.atomic():
        old = list(SigningKey.objects.select_for_update().filter(status=SigningKey.Status.ACTIVE))
        SigningKey.objects.filter(pk__in=[k.pk for k in old]).update(
            status=SigningKey.Status.RETIRED, retired_at=timezone.now(), private_key_encrypted=""
        )
        key = _create_signing_key(algorithm)
        record(
            event=events.SIGNING_KEY_ROTATED,
            actor=actor,
            detail={"kid": key.kid, "algorithm": algorithm, "retired": [k.kid for k in old]},
        )
    return key


def prune_signing_keys(*, actor: str) -> list[str]:
    """Delete retired keys none of whose tokens can still authenticate; returns their kids.

    A key stays while any token it signed is usable, counting the JWT ``exp`` leeway (so such a
    token is refused as expired, not as signed by an unknown key), and for at least
    ``RETIRED_KEY_MIN_SECONDS`` plus that leeway after it was retired: the identity assertions it
    signed for upstreams (``tokens.assertions``, 5 minutes at most, one a process may still sign
    shortly after a rotation) must keep verifying through the JWKS until they expire. Their
    tokens keep their rows (history) with ``signing_key`` set to null; JWKS stops listing them.
    """
    now = timezone.now()
    leeway = timedelta(seconds=settings.TOKEN_LEEWAY_SECONDS)
    recently = now - timedelta(seconds=RETIRED_KEY_MIN_SECONDS) - leeway
    with transaction.atomic():
        needed = Token.objects.usable(now, unexpired_at=now - leeway).values("signing_key_id")
        doomed = list(
            SigningKey.objects.select_for_update()
            .filter(status=SigningKey.Status.RETIRED, retired_at__lte=recently)
            .exclude(pk__in=needed)
            .values_list("kid", flat=True)
        )
        if not doomed:
            return []
        SigningKey.objects.filter(kid__in=doomed).delete()
        record(event=events.SIGNING_KEY_PRUNED, actor=actor, detail={"pruned": doomed})
    for kid in doomed:
        _verification_keys.pop(kid, None)
    return doomed


# --- verification keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _VerificationKey:
    algorithm: str
    public_key_pem: str


# kid -> public half. A key's algorithm and public key never change, so a process may keep them;
# open streams re-verify every 0.5 s and this saves one query each time. Unknown kids are not
# cached, so a key created by another instance is found on first use.
_verification_keys: dict[str, _VerificationKey] = {}
_VERIFICATION_KEY_CACHE_SIZE = 256


def _verification_key(kid: str) -> _VerificationKey | None:
    cached = _verification_keys.get(kid)
    if cached is not None:
        return cached
    row = SigningKey.objects.filter(kid=kid).values_list("algorithm", "public_key_pem").first()
    if row is None:
        return None
    if len(_verification_keys) >= _VERIFICATION_KEY_CACHE_SIZE:
        _verification_keys.clear()
    key = _verification_keys[kid] = _VerificationKey(algorithm=row[0], public_key_pem=row[1])
    return key


def verify_signature(encoded: str) -> dict[str, object]:
    """The claims of ``encoded`` if one of our keys signed it for this gateway; raises otherwise."""
    try:
        header = jwt.get_unverified_header(encoded)
    except jwt.PyJWTError as exc:
        raise TokenMalformed("The token is not a well-formed JWT.") from exc
    if _FORBIDDEN_JOSE_HEADERS & set(header):
        raise TokenSignatureInvalid("The token carries a key-selection header that is not allowed.")
    if header.get("typ") == IDENTITY_ASSERTION_TYP:
        raise IdentityAssertionPresented(IDENTITY_ASSERTION_REFUSAL)
    kid = header.get("kid")
    alg = header.get("alg")
    if not isinstance(kid, str) or not kid or alg not in settings.TOKEN_ALGORITHMS:
        raise TokenSignatureInvalid("The token's algorithm or key id is not acceptable.")
    key = _verification_key(kid)
    if key is None or key.algorithm != alg:
        raise TokenSignatureInvalid("The token was not signed by a known key.")
    try:
        return jwt.decode(
            encoded,
            crypto.load_public_key(key.public_key_pem),
            algorithms=[key.algorithm],
            audience=settings.TOKEN_AUDIENCE,
            issuer=settings.TOKEN_ISSUER,
            leeway=settings.TOKEN_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "jti", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    # Signed by our key, but minted where GATEHOUSE_PUBLIC_URL differed (a CLI run without the
    # server's environment, a moved gateway): say so, these values are public metadata anyway.
    except jwt.InvalidAudienceError as exc:
        raise TokenSignatureInvalid(
            f"The token was issued for another audience; this gateway accepts {settings.TOKEN_AUDIENCE!r}."
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenSignatureInvalid(
            f"The token was issued by another issuer; this gateway accepts {settings.TOKEN_ISSUER!r}."
        ) from exc
    except jwt.PyJWTError as exc:
        raise TokenSignatureInvalid() from exc

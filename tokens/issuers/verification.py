"""Verify a JWT from a trusted external issuer: the one place that decides whether it is good.

In order, each failure a ``ExternalTokenRefused`` with its reason: well-formed; no header that
picks its own key (``jku``, ``x5u``, ``jwk``, ``x5c``, ``crit``); ``iss`` (read unverified only to
choose the issuer row) is an enabled trusted issuer; the header's ``alg`` is one that issuer
allows (never ``none`` nor HS*); its ``kid`` is in that issuer's key set (``keys.provider_keys``)
and the key's type fits the algorithm; then signature, ``iss``, ``aud``, ``exp`` (required),
``nbf``, ``iat`` by pyjwt with the gateway's leeway; then ``sub``; then every claim rule; then
the subject is not on the deny list. A verified token is never cached here: callers have their
own bounded caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings

from tokens.exceptions import ExternalTokenRefused
from tokens.issuers.claim_rules import first_unmet
from tokens.issuers.keys import ProviderUnavailable, provider_keys
from tokens.issuers.models import ASYMMETRIC_ALGORITHMS, DeniedSubject, TrustedIssuer

MAX_EXTERNAL_TOKEN_LENGTH = 8192
_FORBIDDEN_JOSE_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


@dataclass(frozen=True)
class ExternalIdentity:
    issuer: TrustedIssuer
    subject: str
    jti: str  # the token's own jti, or "" when it has none
    expires_at: datetime
    claims: dict[str, Any]

    @property
    def owner_name(self) -> str:
        return self.issuer.owner_name(self.subject)


def unverified_issuer(raw: str) -> str | None:
    """The ``iss`` a JWT claims, unverified (only to pick which issuer checks it); None if not a JWT."""
    if len(raw) > MAX_EXTERNAL_TOKEN_LENGTH or raw.count(".") != 2:
        return None
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


def verify_external(raw: str, *, direct: bool = False) -> ExternalIdentity:
    """The verified identity in ``raw``; with ``direct``, only from issuers trusted for direct use."""
    issuer_url = unverified_issuer(raw)
    if issuer_url is None:
        raise ExternalTokenRefused("The subject token is not a well-formed JWT.", reason="malformed")
    issuer = TrustedIssuer.objects.filter(issuer=issuer_url, enabled=True).first()
    if issuer is None:
        raise ExternalTokenRefused(f"{issuer_url!r} is not a trusted issuer here.", reason="unknown_issuer")
    if direct and not issuer.direct:
        raise ExternalTokenRefused(
            f"Tokens of the issuer {issuer.name!r} are not accepted at the gateway directly; "
            "exchange it at /api/v1/token-exchange/ first.",
            reason="not_direct", issuer=issuer.name,
        )
    claims = _checked_claims(raw, issuer)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise ExternalTokenRefused(
            "The token has no usable sub claim.", reason="missing_claim", issuer=issuer.name
        )
    unmet = first_unmet(issuer.claim_rules, claims)
    if unmet is not None:
        raise ExternalTokenRefused(
            f"The token does not meet the issuer's rule {unmet}.", reason="rule_unmet", issuer=issuer.name
        )
    if DeniedSubject.objects.filter(issuer=issuer, subject=subject).exists():
        raise ExternalTokenRefused(
            f"The subject {subject!r} of {issuer.name!r} has been cut off (revoke_subject).",
            reason="subject_denied", issuer=issuer.name,
        )
    jti = claims.get("jti")
    return ExternalIdentity(
        issuer=issuer, subject=subject, jti=jti if isinstance(jti, str) else "",
        expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC), claims=claims,
    )


def _checked_claims(raw: str, issuer: TrustedIssuer) -> dict[str, Any]:
    def refuse(message: str, reason: str) -> ExternalTokenRefused:
        return ExternalTokenRefused(message, reason=reason, issuer=issuer.name)

    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as exc:
        raise refuse("The token's header cannot be read.", "malformed") from exc
    if _FORBIDDEN_JOSE_HEADERS & set(header):
        raise refuse("The token carries a key-selection header that is not allowed.", "key_selection_header")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in issuer.algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise refuse(
            f"The algorithm {alg!r} is not allowed for {issuer.name!r} "
            f"(allowed: {', '.join(issuer.algorithms)}).",
            "algorithm",
        )
    if not isinstance(kid, str) or not kid:
        raise refuse("The token has no kid header.", "unknown_kid")
    try:
        key = provider_keys.key(jwks_uri=issuer.jwks_uri, kid=kid)
    except ProviderUnavailable as exc:
        raise refuse(f"The issuer's keys could not be fetched: {exc}", "provider_unavailable") from exc
    if key is None:
        raise refuse(f"The key {kid!r} is not one of {issuer.name!r}'s signing keys.", "unknown_kid")
    if key.alg not in (None, alg):  # the provider said which algorithm this key is for
        raise refuse(f"The key {kid!r} is not used with {alg!r}.", "algorithm")
    try:
        return jwt.decode(
            raw, key.public_key, algorithms=[alg], audience=issuer.audience, issuer=issuer.issuer,
            leeway=settings.TOKEN_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise refuse("The token has expired.", "expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise refuse("The token is not valid yet (nbf or iat in the future).", "not_yet_valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise refuse(f"The token is not for the audience {issuer.audience!r}.", "wrong_audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise refuse("The token's issuer does not match.", "wrong_issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise refuse(f"The token has no {exc.claim} claim.", "missing_claim") from exc
    except jwt.PyJWTError as exc:
        # Includes a key whose type does not fit the algorithm (pyjwt refuses it): not signed by us.
        raise refuse("The token's signature does not verify with the issuer's key.", "signature") from exc

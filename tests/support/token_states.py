"""Every state a token row can be in, built through the real services, with what each must mean.

Shared by the liveness specification (``tests/tokens/test_liveness.py``) and the session sweep's
(``tests/gateway/test_expiry_sessions.py``), so both read the same table. Each state leaves the
JWT itself valid (its ``exp`` is still ahead), so only the row can refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from tokens.exceptions import AuthenticationFailed, TokenExpired, TokenRevoked
from tokens.expiry import expire_tokens
from tokens.models import Token
from tokens.services import revoke_token, rotate_token

Liveness = Token.Liveness


@dataclass(frozen=True)
class TokenState:
    name: str
    build: Callable[[Token], None]
    liveness: Token.Liveness
    # What the console shows (``Token.status_at``).
    shown: str
    # What ``authenticate_token`` raises; None: it accepts the token.
    refusal: type[AuthenticationFailed] | None

    @property
    def usable(self) -> bool:
        return self.liveness == Liveness.USABLE

    def __str__(self) -> str:
        return self.name


def _past_expiry(token: Token) -> None:
    """Move the row's expiry an hour into the past (and its creation before that)."""
    now = timezone.now()
    Token.objects.filter(pk=token.pk).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(hours=1)
    )


def _never_expires(token: Token) -> None:
    Token.objects.filter(pk=token.pk).update(expires_at=None)


def _rotate_with_grace(token: Token) -> None:
    rotate_token(token=token, actor="tests", grace=timedelta(hours=1))


def _rotated_in_grace_past_expiry(token: Token) -> None:
    _rotate_with_grace(token)
    _past_expiry(token)


def _rotated_grace_over(token: Token) -> None:
    _rotate_with_grace(token)
    Token.objects.filter(pk=token.pk).update(grace_until=timezone.now() - timedelta(minutes=1))


def _revoke(token: Token) -> None:
    revoke_token(token=token, actor="tests")


def _revoked_past_expiry(token: Token) -> None:
    _revoke(token)
    _past_expiry(token)


def _expired_by_the_sweep(token: Token) -> None:
    _past_expiry(token)
    assert expire_tokens().expired_jtis == [token.jti]


TOKEN_STATES = [
    TokenState("active", lambda _token: None, Liveness.USABLE, "active", None),
    TokenState("active, never expires", _never_expires, Liveness.USABLE, "active", None),
    TokenState("active past its expiry, not yet swept", _past_expiry, Liveness.EXPIRED, "expired",
               TokenExpired),
    TokenState("rotated, in grace", _rotate_with_grace, Liveness.USABLE, "rotated", None),
    TokenState("rotated, in grace but past its expiry", _rotated_in_grace_past_expiry,
               Liveness.EXPIRED, "rotated", TokenExpired),
    TokenState("rotated, grace over", _rotated_grace_over, Liveness.ROTATED_OUT, "rotated", TokenRevoked),
    TokenState("revoked", _revoke, Liveness.REVOKED, "revoked", TokenRevoked),
    TokenState("revoked, and past its expiry", _revoked_past_expiry, Liveness.REVOKED, "revoked",
               TokenRevoked),
    TokenState("expired by the sweep", _expired_by_the_sweep, Liveness.EXPIRED, "expired", TokenExpired),
]


def put_in_state(token: Token, state: TokenState) -> Token:
    """Bring a freshly issued (active, one hour left) token into ``state``; returns the fresh row."""
    state.build(token)
    return Token.objects.get(pk=token.pk)

"""Domain errors of the token layer. Edges (gateway, API, console) map them to HTTP in one place."""

from __future__ import annotations

from datetime import datetime

from core.exceptions import GatehouseError


class AuthenticationFailed(GatehouseError):
    """The credential is missing or not acceptable."""

    code = "invalid_token"


class CredentialMissing(AuthenticationFailed):
    """No credential was presented."""


class TokenMalformed(AuthenticationFailed):
    """The token is not a well-formed Gatehouse token."""


class IdentityAssertionPresented(TokenMalformed):
    """An identity assertion Gatehouse signed for an upstream, presented back as a client token."""


class TokenSignatureInvalid(AuthenticationFailed):
    """The token's signature, algorithm, key, issuer or audience is not acceptable."""


class TokenExpired(AuthenticationFailed):
    """The token has expired."""


class TokenRevoked(AuthenticationFailed):
    """The token has been revoked or rotated out; ``since`` says when, where the row knows."""

    def __init__(self, message: str = "", *, since: datetime | None = None) -> None:
        super().__init__(message)
        self.since = since


class TokenUnknown(AuthenticationFailed):
    """The token is not known to this gateway."""


class ApiKeyInvalid(AuthenticationFailed):
    """The API key is unknown, revoked or expired."""


class ScopeDenied(GatehouseError):
    """The token's scope does not cover this server or tool."""

    code = "insufficient_scope"


class ScopeCeilingExceeded(GatehouseError):
    """The request asks for more than the API key's ceiling allows."""

    code = "scope_ceiling_exceeded"


class InvalidTokenRequest(GatehouseError):
    """The token request is not valid (unknown server, bad TTL, empty scope)."""

    code = "invalid_request"


class InvalidTransition(GatehouseError):
    """The token is not in a state that allows this action."""

    code = "invalid_state"


class TokenNotFound(GatehouseError):
    """No token matches that id, jti or display prefix."""

    code = "not_found"


class AmbiguousTokenReference(GatehouseError):
    """More than one token matches that display prefix; use the full jti."""

    code = "ambiguous"


class ExternalTokenRefused(AuthenticationFailed):
    """A token from an external issuer that Gatehouse does not accept; ``reason`` names why.

    The reason is a short code audit rows carry (``wrong_audience``, ``rule_unmet``, …); the
    message says it in words, with the issuer's public metadata but never the token.
    """

    def __init__(self, message: str, *, reason: str, issuer: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.issuer = issuer


class IssuerNotFound(GatehouseError):
    """No trusted issuer has that name."""

    code = "not_found"

"""OAuth errors as RFC 6749 names them; ``views`` turns each into its one response."""

from __future__ import annotations

from core.exceptions import GatehouseError


class OAuthError(Exception):
    """An OAuth protocol error: ``error`` is the RFC 6749 code, ``description`` safe to show.

    At the authorization endpoint an error goes back to the client only once its redirect URI is
    known to be the client's (``redirect_to`` is then set); errors about the client or its
    redirect URI are shown to the person instead.
    """

    status = 400

    def __init__(self, error: str, description: str, *, status: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        # Where the person is sent with this error: set once the redirect URI is known good.
        self.redirect_to: str | None = None
        if status is not None:
            self.status = status


class GrantError(GatehouseError):
    """A grant change that cannot be made (unknown server, user, group; bad tool list)."""

    code = "invalid_grant_change"

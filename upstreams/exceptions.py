"""Domain errors of the upstreams app; the edges map them like every ``GatehouseError``."""

from __future__ import annotations

from core.exceptions import GatehouseError


class InvalidServerConfig(GatehouseError):
    """The upstream server settings are not valid."""

    code = "invalid_server"


class ToolPinningError(GatehouseError):
    """Tools cannot be approved as asked (upstream unreachable, an unknown tool name)."""

    code = "tool_pinning"


class AccountError(GatehouseError):
    """A connected account cannot be connected, used or refreshed as asked."""

    code = "account"


class ProviderRefused(AccountError):
    """The upstream's OAuth provider refused a code or a refresh token: the person must connect again."""

    code = "account_provider_refused"


class ProviderUnreachable(AccountError):
    """The upstream's OAuth provider could not be asked (network, timeout, a 5xx): try again later."""

    code = "account_provider_unreachable"

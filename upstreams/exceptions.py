"""Domain errors of the upstreams app; the edges map them like every ``GatehouseError``."""

from __future__ import annotations

from core.exceptions import GatehouseError


class InvalidServerConfig(GatehouseError):
    """The upstream server settings are not valid."""

    code = "invalid_server"


class ToolPinningError(GatehouseError):
    """Tools cannot be approved as asked (upstream unreachable, an unknown tool name)."""

    code = "tool_pinning"

"""Domain errors of the upstreams app; the edges map them like every ``GatehouseError``."""

from __future__ import annotations

from gatehouse.exceptions import GatehouseError


class InvalidServerConfig(GatehouseError):
    """The upstream server settings are not valid."""

    code = "invalid_server"

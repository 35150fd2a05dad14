"""The live-gateway fixtures of the gateway tests (``gw``, ``supergateway_bin``), for the examples."""

from tests.gateway.conftest import gw, supergateway_bin  # noqa: F401 - fixtures, used by name

"""The way to the upstream and back: the hop (``hop``: headers that may cross, the upstream
request), the upstream's status and error bodies judged (``answers``), and the relay of its
answer to the client (``relay``).

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.upstream.answers import check_upstream_status, read_bounded, relay_error
    from gateway.upstream.hop import forward_headers, open_upstream, response_headers, upstream_url
    from gateway.upstream.relay import end_by_watch, pump_sse, race, tool_filter

_HOMES = {
    "check_upstream_status": "gateway.upstream.answers",
    "end_by_watch": "gateway.upstream.relay",
    "forward_headers": "gateway.upstream.hop",
    "open_upstream": "gateway.upstream.hop",
    "pump_sse": "gateway.upstream.relay",
    "race": "gateway.upstream.relay",
    "read_bounded": "gateway.upstream.answers",
    "relay_error": "gateway.upstream.answers",
    "response_headers": "gateway.upstream.hop",
    "tool_filter": "gateway.upstream.relay",
    "upstream_url": "gateway.upstream.hop",
}
__all__ = [
    "check_upstream_status",
    "end_by_watch",
    "forward_headers",
    "open_upstream",
    "pump_sse",
    "race",
    "read_bounded",
    "relay_error",
    "response_headers",
    "tool_filter",
    "upstream_url",
]
__getattr__ = lazy_exports(__name__, _HOMES)

"""The MCP protocol as the gateway reads it: JSON-RPC bodies and headers (``protocol``), tool
policy (``policy``), tool pinning on the hot path (``tool_pins``) and the SSE event parser
(``sse_events``).

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.mcp.policy import filter_tools_payload, refuse_denied_tools, refuse_unpinned_tools
    from gateway.mcp.protocol import (
        CANCELLED_NOTIFICATION,
        HEADER_MISMATCH,
        INVALID_PARAMS,
        INVALID_REQUEST,
        METHOD_HEADER,
        MODERN_VERSIONS,
        PARSE_ERROR,
        PROTOCOL_VERSION_HEADER,
        SESSION_HEADER,
        MalformedMessage,
        RpcBody,
        check_headers_agree,
        parse_body,
    )
    from gateway.mcp.sse_events import MAX_EVENT_BYTES, SseEvent, SseParser, SseTooLarge, serialize

_HOMES = {
    "CANCELLED_NOTIFICATION": "gateway.mcp.protocol",
    "HEADER_MISMATCH": "gateway.mcp.protocol",
    "INVALID_PARAMS": "gateway.mcp.protocol",
    "INVALID_REQUEST": "gateway.mcp.protocol",
    "MAX_EVENT_BYTES": "gateway.mcp.sse_events",
    "METHOD_HEADER": "gateway.mcp.protocol",
    "MODERN_VERSIONS": "gateway.mcp.protocol",
    "MalformedMessage": "gateway.mcp.protocol",
    "PARSE_ERROR": "gateway.mcp.protocol",
    "PROTOCOL_VERSION_HEADER": "gateway.mcp.protocol",
    "RpcBody": "gateway.mcp.protocol",
    "SESSION_HEADER": "gateway.mcp.protocol",
    "SseEvent": "gateway.mcp.sse_events",
    "SseParser": "gateway.mcp.sse_events",
    "SseTooLarge": "gateway.mcp.sse_events",
    "check_headers_agree": "gateway.mcp.protocol",
    "filter_tools_payload": "gateway.mcp.policy",
    "parse_body": "gateway.mcp.protocol",
    "refuse_denied_tools": "gateway.mcp.policy",
    "refuse_unpinned_tools": "gateway.mcp.policy",
    "serialize": "gateway.mcp.sse_events",
}
__all__ = [
    "CANCELLED_NOTIFICATION",
    "HEADER_MISMATCH",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_EVENT_BYTES",
    "METHOD_HEADER",
    "MODERN_VERSIONS",
    "PARSE_ERROR",
    "PROTOCOL_VERSION_HEADER",
    "SESSION_HEADER",
    "MalformedMessage",
    "RpcBody",
    "SseEvent",
    "SseParser",
    "SseTooLarge",
    "check_headers_agree",
    "filter_tools_payload",
    "parse_body",
    "refuse_denied_tools",
    "refuse_unpinned_tools",
    "serialize",
]
__getattr__ = lazy_exports(__name__, _HOMES)

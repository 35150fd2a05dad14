"""One request's way through the gateway: its ``Context``, the admission step every flow opens
with and the ASGI wrapper (``steps``), refusals answered and audited once (``refusing``), and its
trace span (``spans``).

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.pipeline.context import Context
    from gateway.pipeline.refusing import audit_refusal, end_stream, malformed, refuse
    from gateway.pipeline.spans import TRACE_HEADERS, request_span
    from gateway.pipeline.steps import Endpoint, Receive, admit_request, asgi_app

_HOMES = {
    "Context": "gateway.pipeline.context",
    "Endpoint": "gateway.pipeline.steps",
    "Receive": "gateway.pipeline.steps",
    "TRACE_HEADERS": "gateway.pipeline.spans",
    "admit_request": "gateway.pipeline.steps",
    "asgi_app": "gateway.pipeline.steps",
    "audit_refusal": "gateway.pipeline.refusing",
    "end_stream": "gateway.pipeline.refusing",
    "malformed": "gateway.pipeline.refusing",
    "refuse": "gateway.pipeline.refusing",
    "request_span": "gateway.pipeline.spans",
}
__all__ = [
    "TRACE_HEADERS",
    "Context",
    "Endpoint",
    "Receive",
    "admit_request",
    "asgi_app",
    "audit_refusal",
    "end_stream",
    "malformed",
    "refuse",
    "request_span",
]
__getattr__ = lazy_exports(__name__, _HOMES)

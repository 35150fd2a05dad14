"""One span per gateway request, and the ``traceparent`` the upstream receives (when tracing is on).

Trust: a gateway request starts a new trace. A client's ``traceparent`` is untrusted input (it
could pick the trace id an operator searches by, or force sampling), so it is not continued; a
valid one is kept as a span *link*, which lets an operator follow a client's trace into ours. The
client's ``traceparent``/``tracestate`` never reach the upstream: it receives the gateway span's,
so its spans are children of the gateway's.

The span carries what the audit row carries, minus anything secret: server, tool, JSON-RPC
method, outcome, HTTP status, the token's display prefix (never the token), the session id, and for
a refusal its reason. With tracing off every function here returns at its first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from core import tracing

if TYPE_CHECKING:
    from gateway.pipeline.context import Context
    from gateway.request.responder import Responder

# Headers the gateway owns on the upstream hop when tracing is on.
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


_NO_SPAN = nullcontext()


def request_span(ctx: Context, responder: Responder) -> AbstractContextManager[None]:
    """Run one gateway request inside its span; with tracing off, one shared no-op (no generator
    to build per request: 0.3 µs instead of 3 µs in a micro-benchmark)."""
    return _span(ctx, responder) if tracing.ENABLED else _NO_SPAN


@contextmanager
def _span(ctx: Context, responder: Responder) -> Iterator[None]:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    incoming = ctx.incoming
    links = []
    client_traceparent = incoming.header("traceparent")
    if client_traceparent:
        client_span = trace.get_current_span(
            TraceContextTextMapPropagator().extract({"traceparent": client_traceparent})
        ).get_span_context()
        if client_span.is_valid:
            links.append(Link(client_span))
    tracer = trace.get_tracer("gatehouse.gateway")
    # A new root: nothing the client sent becomes our parent (context=an empty Context).
    with tracer.start_as_current_span(
        f"{incoming.method} /{incoming.path.strip('/').split('/')[0]}",  # "POST /mcp": few names
        context=otel_context.Context(), kind=SpanKind.SERVER, links=links,
        attributes={"http.request.method": incoming.method, "url.path": incoming.path},
        record_exception=False, set_status_on_exception=False,
    ) as span:
        try:
            yield
        finally:
            span.set_attributes(_attributes(ctx, responder))
            refused = ctx.refused
            status = responder.status or (refused.status if refused else 0)
            if refused is not None or status >= 500:
                span.set_status(Status(StatusCode.ERROR, refused.reason if refused else str(status)))


def _attributes(ctx: Context, responder: Responder) -> dict[str, Any]:
    subject = ctx.subject(ctx.refused)
    refused = ctx.refused
    status = responder.status or (refused.status if refused else 0)
    attributes: dict[str, Any] = {
        "gatehouse.server": subject.server,
        "gatehouse.token.prefix": subject.actor,
        "gatehouse.session.id": subject.session_id,
        "gatehouse.outcome": _outcome(status, refused is not None),
        "http.response.status_code": status,
    }
    if ctx.rpc is not None:
        attributes["rpc.method"] = ctx.rpc_method
    if ctx.tool:
        attributes["gatehouse.tool"] = ctx.tool[:200]
    if refused is not None:
        attributes["gatehouse.refusal.reason"] = refused.reason
    return attributes


def _outcome(status: int, refused: bool) -> str:
    if refused:
        return "error" if status >= 500 else "denied"
    return "error" if status >= 400 else "success"


def upstream_headers() -> list[tuple[str, str]]:
    """The current span's ``traceparent`` (and ``tracestate``) for an upstream request."""
    if not tracing.ENABLED:
        return []
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return list(carrier.items())

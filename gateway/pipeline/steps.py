"""The opening every gateway flow shares, stated once, and the ASGI wrapper that answers refusals.

A request gets in through ``admit_request``: cheap header checks first (browser ``Origin``, the
method, a declared ``Content-Length``), then the credential, then admission (``admit_fast``:
limits, token, scope, server, session; from the per-process caches of ``gateway.admission.caches``, or on a
miss in one database hop), then the bounded body. What differs between endpoints
is data, an ``Endpoint``: its transport, its methods, where its session id comes from, whether
a session is required, whether a declared length is checked. A refusal at any step is a
``Refusal``; ``asgi_app`` turns whatever a flow raises into its audited answer (``refuse``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import httpx
from django.conf import settings

from core.database import UNAVAILABLE_ERRORS
from gateway.admission.credentials import extract_credential, query_param
from gateway.admission.rules import admit_fast
from gateway.mcp.protocol import (
    MODERN_VERSIONS,
    PROTOCOL_VERSION_HEADER,
    SESSION_HEADER,
    MalformedMessage,
    RpcBody,
    parse_body,
)
from gateway.pipeline.context import Context
from gateway.pipeline.refusing import malformed, refuse
from gateway.pipeline.spans import request_span
from gateway.request import request_metrics
from gateway.request.incoming import ClientGone, Incoming, check_declared_length, check_origin, read_body
from gateway.request.refusals import (
    AccountNotConnected,
    BadRequest,
    DatabaseUnavailable,
    InternalError,
    MethodNotAllowed,
    Refusal,
    UpstreamUnavailable,
)
from gateway.request.responder import Responder
from upstreams.transports import Transport

# What reading an upstream body raises when the upstream breaks off mid-response (the aiohttp
# transport lets some of its own errors through unmapped).
UPSTREAM_READ_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, aiohttp.ClientError)

logger = logging.getLogger("gatehouse.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
AsgiApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
Flow = Callable[[Context, Receive, Responder], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """The entry rules of one gateway endpoint."""

    transport: Transport
    # In the order the Allow header lists them.
    methods: tuple[str, ...]
    # The 405 detail for any other method.
    method_hint: str
    # The client's session id: the Mcp-Session-Id header, ``?session_id=``, or none at all.
    session_from: Literal["header", "query"] | None
    # Non-empty: a request without a session is refused (400 ``session_required``) with this detail.
    session_required: str = ""
    # Refuse an oversized declared Content-Length before touching the database.
    check_length: bool = True

    def client_session(self, incoming: Incoming) -> str | None:
        if self.session_from == "header":
            return incoming.header(SESSION_HEADER)
        if self.session_from == "query":
            return query_param(incoming.query_string, "session_id") or None
        return None


async def admit_request(ctx: Context, receive: Receive, *, endpoint: Endpoint) -> bytes:
    """Admit the request of ``ctx`` to ``endpoint`` and return its body, or raise a ``Refusal``.

    Fills in ``ctx.credential``, ``ctx.admission``, ``ctx.session_id`` and ``ctx.bytes_in``.
    The credential is checked before the session: without a valid token, 401 is the only answer
    (no hint about the rest).
    """
    incoming = ctx.incoming
    check_origin(incoming)
    if incoming.method not in endpoint.methods:
        raise MethodNotAllowed(endpoint.method_hint, allow=", ".join(endpoint.methods))
    if endpoint.check_length:
        check_declared_length(incoming)
    ctx.credential = extract_credential(incoming.headers, incoming.query_string)
    try:
        ctx.admission = await admit_fast(
            client_ip=incoming.client_ip,
            credential=ctx.credential,
            server_name=incoming.server_name,
            session_id=endpoint.client_session(incoming),
            transport=endpoint.transport,
        )
    except AccountNotConnected as refusal:  # answered as a JSON-RPC error to the requests sent
        body = await read_body(receive, limit=settings.MAX_BODY_BYTES)
        rpc, header = _parsed(body), incoming.header(PROTOCOL_VERSION_HEADER)
        version = rpc.protocol_version(header) if rpc else header
        raise refusal.answering(rpc.request_ids() if rpc else [],
                                url_elicitation=version in MODERN_VERSIONS) from None
    binding = ctx.admission.binding
    if binding is None and endpoint.session_required:
        raise BadRequest(endpoint.session_required, code="session_required")
    ctx.session_id = binding.id if binding else ""
    body = await read_body(receive, limit=settings.MAX_BODY_BYTES)
    ctx.bytes_in = len(body)
    return body


def _parsed(body: bytes) -> RpcBody | None:
    """``body``'s JSON-RPC messages, or None for an empty or malformed body."""
    if not body:
        return None
    try:
        return parse_body(body)
    except MalformedMessage:
        return None


def asgi_app(flow: Flow, *, doc: str) -> AsgiApp:
    """Wrap a request flow as an ASGI app: timed (``gateway.request.request_metrics``), in its span
    (``gateway.pipeline.spans``), every refusal turned into its audited answer (``_answer``)."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        ctx = Context(incoming=Incoming.from_scope(scope))
        responder = Responder(send)
        clock = request_metrics.start_request()
        try:
            with request_span(ctx, responder):
                await _answer(flow, ctx, receive, responder)
        finally:
            request_metrics.end_request(clock)

    app.__doc__ = doc
    return app


async def _answer(flow: Flow, ctx: Context, receive: Receive, responder: Responder) -> None:
    """Run ``flow``; whatever it raises becomes its audited answer (``refuse``)."""
    try:
        await flow(ctx, receive, responder)
    except Refusal as refusal:
        await refuse(ctx, responder, refusal)
    except MalformedMessage as exc:
        await refuse(ctx, responder, malformed(exc))
    except ClientGone:
        return
    except UPSTREAM_READ_ERRORS:
        # Headers may be out already: the client's stream ends (its pending requests told why),
        # the failure is audited.
        await refuse(ctx, responder, UpstreamUnavailable("The upstream server broke off its response."))
    except UNAVAILABLE_ERRORS:
        # Any database hop of any flow (admission after its one reconnect, sessions): 503 with
        # Retry-After, not a 500. The audit row waits in the writer's queue until the database
        # is back (audit.batching retries).
        logger.warning("gateway database unavailable", extra={"path": ctx.incoming.path})
        await refuse(ctx, responder, DatabaseUnavailable())
    except Exception:
        logger.exception("gateway request failed", extra={"path": ctx.incoming.path})
        await refuse(ctx, responder, InternalError("The gateway failed on this request; it is logged."))

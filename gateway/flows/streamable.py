"""Streamable HTTP (``/mcp/<server>/``, ``/mcp/``): POST, GET (stream) and DELETE, both protocol generations.

After admission a POST body is read as JSON-RPC: its routing headers must agree with it, an
``initialize`` must come alone and outside a session, and a ``tools/call`` outside the token's
allowlist is refused before it reaches the upstream. The upstream's answer is relayed as it
streams, raced against the client and the re-checks. An ``initialize`` the upstream accepts
starts a gateway session bound to the token; a DELETE ends it (also when the upstream could not
be told). A stream cut short inside a session gets its requests cancelled upstream explicitly.
"""

from __future__ import annotations

import json

from django.urls import URLPattern

from core.asgi_routing import asgi_route
from gateway.flows import SERVER
from gateway.mcp import policy
from gateway.mcp.protocol import (
    CANCELLED_NOTIFICATION,
    INVALID_REQUEST,
    METHOD_HEADER,
    PROTOCOL_VERSION_HEADER,
    SESSION_HEADER,
    check_headers_agree,
    parse_body,
)
from gateway.pipeline.context import Context
from gateway.pipeline.steps import Endpoint, Receive, admit_request, asgi_app
from gateway.request.refusals import BadRequest, Refusal
from gateway.request.responder import Responder
from gateway.sessions.lifecycle import close_session, end_if_upstream_forgot, start_session
from gateway.sessions.watch import supervisor
from gateway.upstream.answers import check_upstream_status
from gateway.upstream.hop import forward_headers, open_upstream, upstream_url
from gateway.upstream.relay import end_by_watch, race, relay
from upstreams import transports

ENDPOINT = Endpoint(
    transport=transports.STREAMABLE,
    methods=("GET", "POST", "DELETE"),
    method_hint="Use POST, GET or DELETE.",
    session_from="header",
)
CLOSED_BY_CLIENT = "closed by client (DELETE)"


async def _streamable(ctx: Context, receive: Receive, responder: Responder) -> None:
    body = await admit_request(ctx, receive, endpoint=ENDPOINT)
    assert ctx.admission is not None and ctx.credential is not None
    incoming, binding = ctx.incoming, ctx.admission.binding
    if incoming.method == "POST":
        ctx.rpc = parse_body(body)
        check_headers_agree(ctx.rpc, incoming.headers)
        if ctx.rpc.is_initialize and (ctx.rpc.is_batch or binding is not None):
            raise Refusal(
                "initialize must be sent alone and outside a session.", status=400, code="bad_initialize",
                tool="", rpc_code=INVALID_REQUEST, request_ids=ctx.rpc.request_ids(),
            )
        version = ctx.rpc.protocol_version(incoming.header(PROTOCOL_VERSION_HEADER))
        try:
            policy.refuse_denied_tools(
                body=ctx.rpc, scope=ctx.admission.token.scope, server=ctx.admission.server.name,
                protocol_version=version,
            )
        except Refusal as refusal:
            raise await policy.step_up(
                refusal, token=ctx.admission.token, server=ctx.admission.server.name,
                endpoint_path=ENDPOINT.transport.client_path(ctx.admission.server.name),
            ) from None
        policy.refuse_unpinned_tools(body=ctx.rpc, target=ctx.admission.server, protocol_version=version)
    elif incoming.method == "DELETE" and binding is None:
        raise BadRequest("DELETE needs the Mcp-Session-Id of the session to end.", code="session_required")

    # A DELETE ends its own session: watching that session would cut its answer into a 404.
    watched_session = binding.id if binding and incoming.method != "DELETE" else None
    watch = supervisor().watch(raw_token=ctx.credential.raw, session_id=watched_session)
    outcome = "done"
    try:
        outcome = await race(_exchange(ctx, body, responder), receive=receive, watch=watch)
    finally:
        supervisor().unwatch(watch)
        if incoming.method == "DELETE" and binding is not None:
            # Also when the upstream could not be told: the client asked for the session to end.
            await close_session(ctx, session_id=binding.id, reason=CLOSED_BY_CLIENT)
    if outcome == "watch":
        await end_by_watch(ctx, responder, watch)
        await _cancel_in_flight(ctx, reason=watch.reason)
    elif outcome == "client":
        ctx.notes.ended_by = "client_disconnect"
        await _cancel_in_flight(ctx, reason="client_disconnect")
    ctx.record_exchange(responder)


async def _exchange(ctx: Context, body: bytes, responder: Responder) -> None:
    assert ctx.admission is not None
    server, binding = ctx.admission.server, ctx.admission.binding
    headers = forward_headers(
        ctx.incoming, server_headers=server.headers,
        upstream_session_id=binding.upstream_session_id if binding else None,
        credential=ctx.raw_credential, caller=ctx.admission.caller_headers,
    )
    url = upstream_url(server.url, ctx.incoming.query_string, credential=ctx.raw_credential)
    upstream = await open_upstream(
        method=ctx.incoming.method, url=url, headers=headers, body=body,
        bound_headers=ctx.incoming.method != "GET",
    )
    try:
        check_upstream_status(upstream)
        if ctx.incoming.method == "DELETE" and binding is not None:
            await close_session(ctx, session_id=binding.id, reason=CLOSED_BY_CLIENT)
        session_out = binding.id if binding else None
        if ctx.rpc is not None and ctx.rpc.is_initialize and upstream.is_success:
            upstream_sid = upstream.headers.get(SESSION_HEADER)
            if upstream_sid:
                assert ctx.rpc.single is not None
                requested = ctx.rpc.single.params.get("protocolVersion")
                created = await start_session(
                    ctx, upstream_session_id=upstream_sid,
                    protocol_version=requested if isinstance(requested, str) else "",
                )
                session_out = created.id
        else:
            await end_if_upstream_forgot(ctx, upstream)
        await relay(ctx, upstream, responder, session_id=session_out)
    finally:
        await upstream.aclose()


async def _cancel_in_flight(ctx: Context, *, reason: str) -> None:
    """Tell the upstream to stop the requests of a stream that ended early (best effort).

    Inside a session the upstream does not treat a closed stream as a cancellation, so it would
    finish a revoked token's or a departed client's tool call. A disconnect is a cancellation, so
    each such request gets an explicit ``notifications/cancelled``; without a session, closing
    the upstream stream already cancelled it.
    """
    binding = ctx.admission.binding if ctx.admission else None
    if ctx.admission is None or binding is None or ctx.rpc is None or not ctx.rpc.has_requests:
        return
    headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        (METHOD_HEADER, CANCELLED_NOTIFICATION),
        *ctx.admission.server.headers.items(),
        *ctx.admission.caller_headers,
        (SESSION_HEADER, binding.upstream_session_id),
    ]
    version = ctx.incoming.header(PROTOCOL_VERSION_HEADER)
    if version:
        headers.append((PROTOCOL_VERSION_HEADER, version))
    url = upstream_url(ctx.admission.server.url, ctx.incoming.query_string, credential=ctx.raw_credential)
    cancelled = 0
    for request_id in ctx.rpc.request_ids():
        body = json.dumps({
            "jsonrpc": "2.0", "method": CANCELLED_NOTIFICATION,
            "params": {"requestId": request_id, "reason": f"gateway ended the stream: {reason}"},
        }).encode()
        try:
            upstream = await open_upstream(method="POST", url=url, headers=headers, body=body)
        except Refusal:
            break  # the upstream is gone; nothing left to cancel there
        await upstream.aclose()
        cancelled += upstream.is_success
    ctx.notes.upstream_cancelled = cancelled


streamable_http = asgi_app(
    _streamable,
    doc="``/mcp/<server>/`` and ``/mcp/``: POST, GET (stream) and DELETE, both protocol generations.",
)

_PREFIX = transports.STREAMABLE.path_prefix
prefixes = (_PREFIX,)
routes: list[URLPattern] = [
    asgi_route(rf"^{_PREFIX}/{SERVER}/?$", streamable_http),
    # For a token scoped to exactly one server.
    asgi_route(rf"^{_PREFIX}/?$", streamable_http),
]

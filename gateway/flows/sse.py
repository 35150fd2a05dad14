"""Legacy HTTP+SSE: the event stream (``/sse/<server>/``) and its messages (``/messages/<server>/``).

The open event stream is the session. Its ``endpoint`` event is rewritten to the gateway's own
messages URL (``?session_id=`` the gateway's session id), so the client and its token never
learn the upstream's address; a later ``endpoint`` event is dropped. Answers to posted messages
come back on the stream, which may be held by another instance: a tool call the gateway refuses
is delivered there through the channel layer as a JSON-RPC error, and the POST is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urljoin, urlsplit

from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import URLPattern

from core.asgi_routing import asgi_route
from core.layer import best_effort, join_group
from gateway.admission import bindings
from gateway.flows import SERVER
from gateway.mcp import policy
from gateway.mcp.protocol import check_headers_agree, parse_body
from gateway.mcp.sse_events import SseEvent, serialize
from gateway.pipeline.context import Context
from gateway.pipeline.refusing import audit_refusal
from gateway.pipeline.steps import Endpoint, Receive, admit_request, asgi_app
from gateway.request.refusals import Refusal, UpstreamUnavailable, jsonrpc_body
from gateway.request.responder import Responder
from gateway.sessions.closing import close_stream_session
from gateway.sessions.lifecycle import end_if_upstream_forgot, start_session
from gateway.sessions.watch import StreamWatch, supervisor
from gateway.upstream.answers import check_upstream_status
from gateway.upstream.hop import forward_headers, open_upstream, upstream_url
from gateway.upstream.relay import end_by_watch, pump_sse, race, relay, tool_filter
from upstreams import transports

MESSAGES_PREFIX = "messages"
STREAM = Endpoint(
    transport=transports.SSE,
    methods=("GET",),
    method_hint="Open the event stream with GET.",
    session_from=None,
    check_length=False,
)
MESSAGES = Endpoint(
    transport=transports.SSE,
    methods=("POST",),
    method_hint="Post messages with POST.",
    session_from="query",
    session_required="The session_id query parameter is required.",
)
SSE_RESPONSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def _group(session_id: str) -> str:
    return f"gateway.sse.{session_id}"


def _messages_path(server: str, session_id: str) -> str:
    prefix = urlsplit(settings.PUBLIC_URL).path.rstrip("/")
    return f"{prefix}/{MESSAGES_PREFIX}/{server}/?session_id={session_id}"


async def _sse_stream(ctx: Context, receive: Receive, responder: Responder) -> None:
    await admit_request(ctx, receive, endpoint=STREAM)
    assert ctx.credential is not None
    watch = supervisor().watch(raw_token=ctx.credential.raw, session_id=None)
    stream = _LegacyStream(ctx, responder, watch)
    outcome = "done"
    try:
        outcome = await race(stream.run(), receive=receive, watch=watch)
    finally:
        supervisor().unwatch(watch)
        await stream.close()
    if outcome == "watch":
        await end_by_watch(ctx, responder, watch)
    elif outcome == "client":
        ctx.notes.ended_by = "client_disconnect"
    ctx.record_exchange(responder)


class _LegacyStream:
    """One legacy SSE connection: upstream events out, injected JSON-RPC errors in."""

    def __init__(self, ctx: Context, responder: Responder, watch: StreamWatch) -> None:
        self.ctx = ctx
        self.responder = responder
        self.watch = watch
        self.binding: bindings.Binding | None = None
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.listener: asyncio.Task[None] | None = None
        self.filter = tool_filter(ctx)

    async def run(self) -> None:
        assert self.ctx.admission is not None
        server = self.ctx.admission.server
        headers = forward_headers(
            self.ctx.incoming, server_headers=server.headers, upstream_session_id=None,
            credential=self.ctx.raw_credential, caller=self.ctx.admission.caller_headers,
        )
        url = upstream_url(server.url, self.ctx.incoming.query_string, credential=self.ctx.raw_credential)
        upstream = await open_upstream(method="GET", url=url, headers=headers, body=None)
        try:
            check_upstream_status(upstream)
            if not upstream.is_success or not upstream.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                raise UpstreamUnavailable(f"The upstream SSE endpoint answered {upstream.status_code}.")
            # Headers wait for the rewritten endpoint event: an upstream that fails before it
            # (another origin, a closed stream) gets the client a 502, not an empty 200 stream.
            self.responder.start_with_first_byte(200, SSE_RESPONSE_HEADERS, event_stream=True)
            # The endpoint event is owed at once: the first-event bound applies.
            await pump_sse(upstream, self.responder, self.on_event, awaits_answer=True)
            if self.binding is None:
                raise UpstreamUnavailable("The upstream's event stream ended before announcing an endpoint.")
            await self.responder.finish()
        finally:
            await upstream.aclose()

    async def on_event(self, event: SseEvent) -> bytes:
        if event.event == "endpoint":
            if self.binding is None:
                return await self._rewrite_endpoint(event)
            # The session's endpoint is fixed: a later one would point the client (and its token)
            # wherever the upstream likes, and reveal the upstream's own paths.
            self.ctx.notes.endpoint_events_dropped = (self.ctx.notes.endpoint_events_dropped or 0) + 1
            return b""
        return await self.filter(event)

    async def _rewrite_endpoint(self, event: SseEvent) -> bytes:
        assert self.ctx.admission is not None
        server = self.ctx.admission.server
        target = urljoin(server.url, event.data.strip())
        if urlsplit(target)[:2] != urlsplit(server.url)[:2]:
            raise UpstreamUnavailable("The upstream announced a messages endpoint on another origin.")
        self.binding = await start_session(
            self.ctx, upstream_session_id=event.data.strip(), protocol_version=""
        )
        self.watch.session_id = self.binding.id
        if self.layer is not None:  # without it (Redis down) the stream works, minus injected refusals
            self.channel = await join_group(self.layer, _group(self.binding.id))
            if self.channel is not None:
                self.listener = asyncio.ensure_future(self._listen())
        return serialize(event="endpoint", data=_messages_path(server.name, self.binding.id))

    async def _listen(self) -> None:
        """Deliver refusals that ``/messages/`` (on any instance) addressed to this stream."""
        assert self.layer is not None and self.channel is not None
        while True:
            message = await self.layer.receive(self.channel)
            payload = message.get("payload")
            if isinstance(payload, str):
                await self.responder.body(serialize(event="message", data=payload))

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
        if self.binding is None:
            return
        if self.layer is not None and self.channel is not None:
            await best_effort(self.layer.group_discard, _group(self.binding.id), self.channel, cleanup=True)
        # The stream is the legacy session: when it closes, the session is over (retried in the
        # background if the database is down right now).
        await close_stream_session(self.ctx, session_id=self.binding.id, reason="event stream closed")


async def _sse_messages(ctx: Context, receive: Receive, responder: Responder) -> None:
    body = await admit_request(ctx, receive, endpoint=MESSAGES)
    assert ctx.admission is not None and ctx.admission.binding is not None
    binding = ctx.admission.binding
    ctx.rpc = parse_body(body)
    check_headers_agree(ctx.rpc, ctx.incoming.headers)
    try:
        policy.refuse_denied_tools(
            body=ctx.rpc, scope=ctx.admission.token.scope, server=ctx.admission.server.name,
            protocol_version=None,
        )
        policy.refuse_unpinned_tools(body=ctx.rpc, target=ctx.admission.server, protocol_version=None)
    except Refusal as refusal:
        if not refusal.request_ids:
            raise  # notifications only: no answer belongs on the stream, the POST itself fails
        # The legacy client reads answers from its event stream, which may be held by another
        # instance: deliver the JSON-RPC error there and accept the POST.
        audit_refusal(ctx, refusal)
        # The call is refused either way; with the layer down the answer is lost (logged once).
        layer = get_channel_layer()
        if layer is not None:
            message = {"type": "gateway.inject", "payload": jsonrpc_body(refusal).decode()}
            await best_effort(layer.group_send, _group(binding.id), message)
        await responder.whole(202, [(b"content-type", b"text/plain")], b"Accepted")
        return
    server = ctx.admission.server
    headers = forward_headers(
        ctx.incoming, server_headers=server.headers, upstream_session_id=None, credential=ctx.raw_credential,
        caller=ctx.admission.caller_headers,
    )
    upstream = await open_upstream(
        method="POST", url=urljoin(server.url, binding.upstream_session_id), headers=headers, body=body
    )
    try:
        check_upstream_status(upstream)
        await end_if_upstream_forgot(ctx, upstream)
        await relay(ctx, upstream, responder, session_id=None)
    finally:
        await upstream.aclose()
    ctx.record_exchange(responder)


sse_stream = asgi_app(
    _sse_stream,
    doc="``/sse/<server>/``: the legacy event stream, with its ``endpoint`` event pointing at us.",
)
sse_messages = asgi_app(
    _sse_messages,
    doc="``/messages/<server>/?session_id=…``: client-to-server messages of a legacy SSE session.",
)

_PREFIX = transports.SSE.path_prefix
prefixes = (_PREFIX, MESSAGES_PREFIX)
routes: list[URLPattern] = [
    asgi_route(rf"^{_PREFIX}/{SERVER}/?$", sse_stream),
    asgi_route(rf"^{MESSAGES_PREFIX}/{SERVER}/?$", sse_messages),
]

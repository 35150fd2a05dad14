"""The gateway's request flows: Streamable HTTP (``/mcp/``) and legacy HTTP+SSE (``/sse/``, ``/messages/``).

Each flow: cheap header checks (Origin, declared length) → one database hop (``admit``: limits,
token, scope, server, session) → the bounded body and its JSON-RPC authorization → the upstream
hop → the response, streamed event by event. Refusals are ``GatewayError``/``JsonRpcRefusal``
exceptions rendered by ``gateway.errors`` and audited here, off the hot path (``record_later``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from channels.layers import get_channel_layer
from django.conf import settings

from audit import events
from audit.services import record_later
from gatehouse.layer import best_effort, join_group
from gatehouse.secrets_mask import token_display_prefix
from gateway import policy, sessions
from gateway.admission import Admission, admit, run_db
from gateway.auth import Credential, extract_credential, query_param
from gateway.errors import (
    BadRequest,
    GatewayError,
    InternalError,
    JsonRpcRefusal,
    MethodNotAllowed,
    NoSuchPath,
    SessionNotFound,
    Unauthorized,
    UpstreamUnavailable,
    http_error,
    jsonrpc_error,
)
from gateway.exchange import (
    UPSTREAM_READ_ERRORS,
    ClientGone,
    Incoming,
    Responder,
    UpstreamRejected,
    check_declared_length,
    check_origin,
    forward_headers,
    open_upstream,
    read_body,
    response_headers,
    upstream_url,
    wait_for_disconnect,
)
from gateway.models import SessionBinding
from gateway.protocol import (
    CANCELLED_NOTIFICATION,
    INVALID_REQUEST,
    METHOD_HEADER,
    PROTOCOL_VERSION_HEADER,
    SESSION_HEADER,
    MalformedMessage,
    RpcBody,
    check_headers_agree,
    parse_body,
)
from gateway.services import end_session
from gateway.sse import MAX_EVENT_BYTES, SseEvent, SseParser, SseTooLarge, serialize
from gateway.watch import StreamWatch, supervisor
from tokens.models import UpstreamServer

logger = logging.getLogger("gatehouse.gateway")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_RESPONSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


@dataclass
class Context:
    """What one request accumulates on its way through: who, where, what, and how it ended."""

    incoming: Incoming
    credential: Credential | None = None
    admission: Admission | None = None
    rpc: RpcBody | None = None
    bytes_in: int = 0
    session_id: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_credential(self) -> str:
        return self.credential.raw if self.credential else ""

    @property
    def tool(self) -> str:
        if self.rpc is None:
            return ""
        return next((m.tool_name for m in self.rpc.messages if m.tool_name), "")

    @property
    def rpc_method(self) -> str:
        if self.rpc is None:
            return ""
        methods = [m.method or "response" for m in self.rpc.messages]
        return methods[0] if len(methods) == 1 else "batch:" + ",".join(methods[:10])

    def audit_identity(self, exc: Exception | None = None) -> dict[str, Any]:
        token = self.admission.token if self.admission else getattr(exc, "token", None)
        server = self.admission.server.name if self.admission else (
            getattr(exc, "server_name", "") or self.incoming.server_name or ""
        )
        if token is not None:
            actor, jti, owner = token.display_prefix, token.jti, token.owner_username
        else:
            actor = token_display_prefix(self.credential.raw) if self.credential else "anonymous"
            jti, owner = "", ""
        return {
            "actor": actor,
            "token_jti": jti,
            "owner": owner,
            "server": server[:64],
            "client_ip": self.incoming.client_ip,
            "user_agent": self.incoming.user_agent,
            "session_id": self.session_id,
        }


# --- refusals -----------------------------------------------------------------------------------


def _audit_refusal(ctx: Context, exc: GatewayError | JsonRpcRefusal) -> None:
    if isinstance(exc, JsonRpcRefusal):
        event, status, reason, detail_text = exc.audit_event, exc.status, exc.reason, exc.message
        tool = exc.tool
    else:
        if getattr(exc, "first_in_window", True) is False:
            return  # one 429 audit per window per key is enough
        event, status, reason, detail_text = exc.audit_event, exc.status, exc.code, exc.detail
        tool = ctx.tool
    detail: dict[str, Any] = {
        "reason": getattr(exc, "reason", reason),
        "detail": detail_text,
        "method": ctx.incoming.method,
        "path": ctx.incoming.path,
    }
    if ctx.credential is not None:
        detail["credential_source"] = ctx.credential.source
    if ctx.rpc is not None:
        detail["rpc_method"] = ctx.rpc_method
    outcome = "error" if status >= 500 else "denied"
    record_later(
        event=event, tool=tool[:200], outcome=outcome, status=status, latency_ms=ctx.incoming.elapsed_ms(),
        detail=detail, **ctx.audit_identity(exc),
    )


async def _refuse(ctx: Context, responder: Responder, exc: GatewayError | JsonRpcRefusal) -> None:
    _audit_refusal(ctx, exc)
    if responder.started:
        await responder.finish()
        return
    status, headers, body = jsonrpc_error(exc) if isinstance(exc, JsonRpcRefusal) else http_error(exc)
    await responder.whole(status, headers, body)


def _malformed(exc: MalformedMessage) -> JsonRpcRefusal:
    return JsonRpcRefusal(
        status=400, code=exc.code, message=exc.message, request_ids=[exc.request_id],
        reason="malformed_message",
    )


def _audit_exchange(ctx: Context, responder: Responder, *, outcome: str = "success", **detail: Any) -> None:
    event = events.MCP_TOOL_CALL if ctx.tool else events.MCP_REQUEST
    status = responder.status or 0
    record_later(
        event=event,
        tool=ctx.tool[:200],
        outcome="error" if status >= 400 else outcome,  # an upstream refusal is not a success
        status=status or None,
        latency_ms=ctx.incoming.elapsed_ms(),
        detail={
            "method": ctx.incoming.method,
            "rpc_method": ctx.rpc_method,
            "bytes_in": ctx.bytes_in,
            "bytes_out": responder.bytes_out,
            **ctx.notes,
            **detail,
        },
        **ctx.audit_identity(),
    )


# --- racing the exchange against the client and the re-checks -----------------------------------


async def _race(work: Awaitable[None], *, receive: Receive, watch: StreamWatch | None) -> str:
    """Run ``work`` until it ends, the client disconnects, or the watch ends the stream."""
    tasks = {
        asyncio.ensure_future(work): "done",
        asyncio.ensure_future(wait_for_disconnect(receive)): "client",
    }
    if watch is not None:
        tasks[asyncio.ensure_future(watch.ended.wait())] = "watch"
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    winner = next(t for t in tasks if t in finished)
    if tasks[winner] == "done":
        winner.result()  # re-raise what the exchange raised
    return tasks[winner]


async def _pump_sse(
    upstream: httpx.Response, responder: Responder, on_event: Callable[[SseEvent], Awaitable[bytes]]
) -> None:
    """Forward each complete upstream event the moment it arrives (rewritten where needed).

    An event the stream ends before completing is dropped, as clients drop it.
    """
    parser = SseParser()
    try:
        async for chunk in upstream.aiter_bytes():
            out = [await on_event(event) for event in parser.feed(chunk)]
            await responder.body(b"".join(out))
        out = [await on_event(event) for event in parser.close()]
    except SseTooLarge as exc:
        raise UpstreamUnavailable(f"The upstream sent an event larger than {MAX_EVENT_BYTES} bytes.") from exc
    await responder.body(b"".join(out))


def _tool_filter(ctx: Context) -> Callable[[SseEvent], Awaitable[bytes]]:
    assert ctx.admission is not None
    allowed = ctx.admission.token.scope.servers.get(ctx.admission.server.name)

    async def on_event(event: SseEvent) -> bytes:
        if not event.is_message:
            return event.raw
        try:
            filtered = policy.filter_tools_payload(event.data, allowed)
        except policy.UncheckableAnswer:
            ctx.notes["uncheckable_events_dropped"] = ctx.notes.get("uncheckable_events_dropped", 0) + 1
            return b""
        if filtered is None:
            return event.raw
        ctx.notes["tools_filtered"] = True
        return serialize(data=filtered.decode(), event=event.event, event_id=event.id)

    return on_event


async def _relay(
    ctx: Context, upstream: httpx.Response, responder: Responder, *, session_id: str | None
) -> None:
    """Relay an SSE answer event by event; anything else whole, after the tool filter.

    Every answer is filtered by its shape, not by the request it answers: an upstream may put a
    held ``tools/list`` result into the answer to another request, and clients take it. A whole
    answer is checked before its headers go out, so one that cannot be checked is a clean 502.
    """
    headers = response_headers(upstream, session_id=session_id)
    content_type = upstream.headers.get("content-type", "").lower()
    if content_type.startswith("text/event-stream"):
        await responder.start(upstream.status_code, headers)
        await _pump_sse(upstream, responder, _tool_filter(ctx))
    else:
        assert ctx.admission is not None
        body = await _read_bounded(upstream, limit=MAX_EVENT_BYTES)
        allowed = ctx.admission.token.scope.servers.get(ctx.admission.server.name)
        try:
            filtered = policy.filter_tools_payload(body, allowed)
        except policy.UncheckableAnswer as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        if filtered is not None:
            ctx.notes["tools_filtered"] = True
        await responder.start(upstream.status_code, headers)
        await responder.body(filtered if filtered is not None else body)
    await responder.finish()


async def _read_bounded(upstream: httpx.Response, *, limit: int) -> bytes:
    """A whole upstream answer that must be read before relaying it, no larger than one SSE event may be."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in upstream.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UpstreamUnavailable(f"The upstream's answer is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_upstream_status(upstream: httpx.Response) -> None:
    if upstream.status_code in (401, 403, 407):
        raise UpstreamRejected(
            f"The upstream server refused the gateway's credentials ({upstream.status_code}); "
            "check the server's configured headers."
        )
    if upstream.is_redirect:
        # Never relayed: the client would follow it with its Gatehouse token to wherever the
        # upstream points, and the Location would reveal the upstream's address.
        raise UpstreamUnavailable(
            f"The upstream answered with a redirect ({upstream.status_code}); the gateway does not "
            "follow redirects, so register the server's final URL."
        )


Flow = Callable[[Context, Receive, Responder], Awaitable[None]]


def _asgi_entry(flow: Flow, doc: str) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """Wrap a request flow as an ASGI app; every refusal becomes HTTP in ``_refuse``."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        ctx = Context(incoming=Incoming.from_scope(scope))
        responder = Responder(send)
        try:
            await flow(ctx, receive, responder)
        except (GatewayError, JsonRpcRefusal) as exc:
            await _refuse(ctx, responder, exc)
        except MalformedMessage as exc:
            await _refuse(ctx, responder, _malformed(exc))
        except ClientGone:
            return
        except UPSTREAM_READ_ERRORS:
            # Headers may be out already: the client's stream ends, the failure is audited.
            await _refuse(ctx, responder, UpstreamUnavailable("The upstream server broke off its response."))
        except Exception:
            logger.exception("gateway request failed", extra={"path": ctx.incoming.path})
            await _refuse(ctx, responder, InternalError("The gateway failed on this request; it is logged."))

    app.__doc__ = doc
    return app


# --- Streamable HTTP ----------------------------------------------------------------------------


async def _streamable(ctx: Context, receive: Receive, responder: Responder) -> None:
    incoming = ctx.incoming
    check_origin(incoming)
    if incoming.method not in ("POST", "GET", "DELETE"):
        raise MethodNotAllowed("Use POST, GET or DELETE.", allow="GET, POST, DELETE")
    check_declared_length(incoming)
    ctx.credential = extract_credential(incoming.headers, incoming.query_string)
    client_session = incoming.header(SESSION_HEADER)
    ctx.admission = await run_db(
        admit,
        client_ip=incoming.client_ip,
        credential=ctx.credential,
        server_name=incoming.server_name,
        session_id=client_session,
        transport=UpstreamServer.Transport.STREAMABLE,
    )
    binding = ctx.admission.binding
    ctx.session_id = binding.id if binding else ""
    body = await read_body(receive, limit=settings.MAX_BODY_BYTES)
    ctx.bytes_in = len(body)
    if incoming.method == "POST":
        ctx.rpc = parse_body(body)
        check_headers_agree(ctx.rpc, incoming.headers)
        if ctx.rpc.is_initialize and (ctx.rpc.is_batch or client_session):
            raise JsonRpcRefusal(
                status=400, code=INVALID_REQUEST,
                message="initialize must be sent alone and outside a session.",
                request_ids=ctx.rpc.request_ids(), reason="bad_initialize",
            )
        single = ctx.rpc.single
        version = incoming.header("mcp-protocol-version") or (
            single.meta_protocol_version if single else None
        )
        policy.refuse_denied_tools(
            body=ctx.rpc, scope=ctx.admission.token.scope, server=ctx.admission.server.name,
            protocol_version=version,
        )
    elif incoming.method == "DELETE" and binding is None:
        raise BadRequest("DELETE needs the Mcp-Session-Id of the session to end.", code="session_required")

    assert ctx.credential is not None
    # A DELETE ends its own session: watching that session would cut its answer into a 404.
    watched_session = binding.id if binding and incoming.method != "DELETE" else None
    watch = supervisor().watch(raw_token=ctx.credential.raw, session_id=watched_session)
    outcome = "done"
    try:
        outcome = await _race(_exchange_streamable(ctx, body, responder), receive=receive, watch=watch)
    finally:
        supervisor().unwatch(watch)
        if incoming.method == "DELETE" and binding is not None:
            # Also when the upstream could not be told: the client asked for the session to end.
            await _close_session(ctx, binding.id)
    if outcome == "watch":
        await _end_by_watch(ctx, responder, watch)
        await _cancel_in_flight(ctx, reason=watch.reason)
    elif outcome == "client":
        ctx.notes["ended_by"] = "client_disconnect"
        await _cancel_in_flight(ctx, reason="client_disconnect")
    _audit_exchange(ctx, responder)


async def _cancel_in_flight(ctx: Context, *, reason: str) -> None:
    """Tell the upstream to stop the requests of a stream that ended early (best effort).

    Inside a session the upstream does not treat a closed stream as a cancellation, so it would
    finish a revoked token's or a departed client's tool call. DESIGN makes a disconnect a
    cancellation, so each such request gets an explicit ``notifications/cancelled``; without a
    session, closing the upstream stream already cancelled it.
    """
    binding = ctx.admission.binding if ctx.admission else None
    if ctx.admission is None or binding is None or ctx.rpc is None or not ctx.rpc.has_requests:
        return
    headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        (METHOD_HEADER, CANCELLED_NOTIFICATION),
        *ctx.admission.server.headers.items(),
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
        except GatewayError:
            break  # the upstream is gone; nothing left to cancel there
        await upstream.aclose()
        cancelled += upstream.is_success
    ctx.notes["upstream_cancelled"] = cancelled


async def _close_session(ctx: Context, session_id: str) -> None:
    assert ctx.admission is not None
    await run_db(
        end_session, session_id=session_id, status=SessionBinding.Status.CLOSED,
        reason="closed by client (DELETE)", actor=ctx.admission.token.display_prefix, notify_upstream=False,
    )


async def _end_by_watch(ctx: Context, responder: Responder, watch: StreamWatch) -> None:
    ctx.notes["ended_by"] = watch.reason
    if responder.started:
        await responder.finish()
        return
    if watch.reason == "token_invalid":
        exc: GatewayError = Unauthorized("The token is no longer valid.", presented=True)
    else:
        exc = SessionNotFound("The session has ended; start a new one.")
    status, headers, body = http_error(exc)
    await responder.whole(status, headers, body)


async def _exchange_streamable(ctx: Context, body: bytes, responder: Responder) -> None:
    assert ctx.admission is not None
    server, binding = ctx.admission.server, ctx.admission.binding
    headers = forward_headers(
        ctx.incoming, server_headers=server.headers,
        upstream_session_id=binding.upstream_session_id if binding else None,
        credential=ctx.raw_credential,
    )
    url = upstream_url(server.url, ctx.incoming.query_string, credential=ctx.raw_credential)
    upstream = await open_upstream(
        method=ctx.incoming.method, url=url, headers=headers, body=body,
        bound_headers=ctx.incoming.method != "GET",
    )
    try:
        _check_upstream_status(upstream)
        if ctx.incoming.method == "DELETE" and binding is not None:
            await _close_session(ctx, binding.id)
        session_out = binding.id if binding else None
        if ctx.rpc is not None and ctx.rpc.is_initialize and upstream.is_success:
            upstream_sid = upstream.headers.get(SESSION_HEADER)
            if upstream_sid:
                created = await _create_streamable_session(ctx, upstream_sid)
                session_out = ctx.session_id = created.id
        elif binding is not None and upstream.status_code == 404 and ctx.incoming.method != "DELETE":
            # The upstream forgot the session (restart, its own expiry): end ours too.
            await run_db(
                end_session, session_id=binding.id, status=SessionBinding.Status.EXPIRED,
                reason="upstream no longer knows the session", actor="system:gateway", notify_upstream=False,
            )
        await _relay(ctx, upstream, responder, session_id=session_out)
    finally:
        await upstream.aclose()


async def _create_streamable_session(ctx: Context, upstream_sid: str) -> sessions.Binding:
    assert ctx.admission is not None and ctx.rpc is not None and ctx.rpc.single is not None
    requested = ctx.rpc.single.params.get("protocolVersion")
    return await run_db(
        sessions.create_binding,
        token=ctx.admission.token,
        server_id=ctx.admission.server.id,
        server_name=ctx.admission.server.name,
        upstream_session_id=upstream_sid,
        protocol_version=requested if isinstance(requested, str) else "",
        transport=UpstreamServer.Transport.STREAMABLE,
        client_ip=ctx.incoming.client_ip,
        user_agent=ctx.incoming.user_agent,
    )


# --- Legacy HTTP+SSE ----------------------------------------------------------------------------


def _group(session_id: str) -> str:
    return f"gateway.sse.{session_id}"


def _messages_path(server: str, session_id: str) -> str:
    prefix = urlsplit(settings.PUBLIC_URL).path.rstrip("/")
    return f"{prefix}/messages/{server}/?session_id={session_id}"


async def _sse_stream(ctx: Context, receive: Receive, responder: Responder) -> None:
    incoming = ctx.incoming
    check_origin(incoming)
    if incoming.method != "GET":
        raise MethodNotAllowed("Open the event stream with GET.", allow="GET")
    ctx.credential = extract_credential(incoming.headers, incoming.query_string)
    ctx.admission = await run_db(
        admit, client_ip=incoming.client_ip, credential=ctx.credential, server_name=incoming.server_name,
        session_id=None, transport=UpstreamServer.Transport.SSE,
    )
    await read_body(receive, limit=settings.MAX_BODY_BYTES)
    assert ctx.credential is not None
    watch = supervisor().watch(raw_token=ctx.credential.raw, session_id=None)
    stream = _LegacyStream(ctx, responder, watch)
    outcome = "done"
    try:
        outcome = await _race(stream.run(), receive=receive, watch=watch)
    finally:
        supervisor().unwatch(watch)
        await stream.close()
    if outcome == "watch":
        await _end_by_watch(ctx, responder, watch)
    elif outcome == "client":
        ctx.notes["ended_by"] = "client_disconnect"
    _audit_exchange(ctx, responder)


class _LegacyStream:
    """One legacy SSE connection: upstream events out, injected JSON-RPC errors in."""

    def __init__(self, ctx: Context, responder: Responder, watch: StreamWatch) -> None:
        self.ctx = ctx
        self.responder = responder
        self.watch = watch
        self.binding: sessions.Binding | None = None
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.listener: asyncio.Task[None] | None = None
        self.filter = _tool_filter(ctx)

    async def run(self) -> None:
        assert self.ctx.admission is not None
        server = self.ctx.admission.server
        headers = forward_headers(
            self.ctx.incoming, server_headers=server.headers, upstream_session_id=None,
            credential=self.ctx.raw_credential,
        )
        url = upstream_url(server.url, self.ctx.incoming.query_string, credential=self.ctx.raw_credential)
        upstream = await open_upstream(method="GET", url=url, headers=headers, body=None)
        try:
            _check_upstream_status(upstream)
            if not upstream.is_success or not upstream.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                raise UpstreamUnavailable(f"The upstream SSE endpoint answered {upstream.status_code}.")
            # Headers wait for the rewritten endpoint event: an upstream that fails before it
            # (another origin, a closed stream) gets the client a 502, not an empty 200 stream.
            self.responder.start_with_first_byte(200, SSE_RESPONSE_HEADERS)
            await _pump_sse(upstream, self.responder, self.on_event)
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
            self.ctx.notes["endpoint_events_dropped"] = self.ctx.notes.get("endpoint_events_dropped", 0) + 1
            return b""
        return await self.filter(event)

    async def _rewrite_endpoint(self, event: SseEvent) -> bytes:
        assert self.ctx.admission is not None
        server = self.ctx.admission.server
        target = urljoin(server.url, event.data.strip())
        if urlsplit(target)[:2] != urlsplit(server.url)[:2]:
            raise UpstreamUnavailable("The upstream announced a messages endpoint on another origin.")
        self.binding = await run_db(
            sessions.create_binding,
            token=self.ctx.admission.token,
            server_id=server.id,
            server_name=server.name,
            upstream_session_id=event.data.strip(),
            protocol_version="",
            transport=UpstreamServer.Transport.SSE,
            client_ip=self.ctx.incoming.client_ip,
            user_agent=self.ctx.incoming.user_agent,
        )
        self.ctx.session_id = self.binding.id
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
        assert self.ctx.admission is not None
        # The stream is the legacy session: when it closes, the session is over.
        await run_db(
            end_session, session_id=self.binding.id, status=SessionBinding.Status.CLOSED,
            reason="event stream closed", actor=self.ctx.admission.token.display_prefix,
            notify_upstream=False,
        )


async def _sse_messages(ctx: Context, receive: Receive, responder: Responder) -> None:
    incoming = ctx.incoming
    check_origin(incoming)
    if incoming.method != "POST":
        raise MethodNotAllowed("Post messages with POST.", allow="POST")
    check_declared_length(incoming)
    session_id = query_param(incoming.query_string, "session_id")
    ctx.credential = extract_credential(incoming.headers, incoming.query_string)
    # The credential first: without a valid token, 401 is the only answer (no hint about the rest).
    ctx.admission = await run_db(
        admit, client_ip=incoming.client_ip, credential=ctx.credential, server_name=incoming.server_name,
        session_id=session_id or None, transport=UpstreamServer.Transport.SSE,
    )
    binding = ctx.admission.binding
    if binding is None:
        raise BadRequest("The session_id query parameter is required.", code="session_required")
    ctx.session_id = binding.id
    body = await read_body(receive, limit=settings.MAX_BODY_BYTES)
    ctx.bytes_in = len(body)
    ctx.rpc = parse_body(body)
    check_headers_agree(ctx.rpc, incoming.headers)
    try:
        policy.refuse_denied_tools(
            body=ctx.rpc, scope=ctx.admission.token.scope, server=ctx.admission.server.name,
            protocol_version=None,
        )
    except JsonRpcRefusal as refusal:
        if not refusal.request_ids:
            raise  # notifications only: no answer belongs on the stream, the POST itself fails
        # The legacy client reads answers from its event stream, which may be held by another
        # instance: deliver the JSON-RPC error there and accept the POST.
        _audit_refusal(ctx, refusal)
        # The call is refused either way; with the layer down the answer is lost (logged once).
        layer = get_channel_layer()
        if layer is not None:
            message = {"type": "gateway.inject", "payload": refusal.body().decode()}
            await best_effort(layer.group_send, _group(binding.id), message)
        await responder.whole(202, [(b"content-type", b"text/plain")], b"Accepted")
        return
    server = ctx.admission.server
    headers = forward_headers(
        incoming, server_headers=server.headers, upstream_session_id=None, credential=ctx.raw_credential
    )
    url = urljoin(server.url, binding.upstream_session_id)
    upstream = await open_upstream(method="POST", url=url, headers=headers, body=body)
    try:
        _check_upstream_status(upstream)
        if upstream.status_code == 404:
            await run_db(
                end_session, session_id=binding.id, status=SessionBinding.Status.EXPIRED,
                reason="upstream no longer knows the session", actor="system:gateway", notify_upstream=False,
            )
        await _relay(ctx, upstream, responder, session_id=None)
    finally:
        await upstream.aclose()
    _audit_exchange(ctx, responder)


async def _no_route(ctx: Context, receive: Receive, responder: Responder) -> None:
    raise NoSuchPath(
        "No gateway endpoint here: use /mcp/<server>/, /mcp/, /sse/<server>/ or /messages/<server>/."
    )


no_route = _asgi_entry(_no_route, "Anything else under ``/mcp``, ``/sse`` or ``/messages``: a JSON 404.")
streamable_http = _asgi_entry(
    _streamable, "``/mcp/<server>/`` and ``/mcp/``: POST, GET (stream) and DELETE, both protocol generations."
)
sse_stream = _asgi_entry(
    _sse_stream, "``/sse/<server>/``: the legacy event stream, with its ``endpoint`` event pointing at us."
)
sse_messages = _asgi_entry(
    _sse_messages, "``/messages/<server>/?session_id=…``: client-to-server messages of a legacy SSE session."
)

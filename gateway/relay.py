"""Relaying an upstream answer to the client: unbuffered, filtered, and cancellable.

An SSE answer goes out event by event as it arrives (``pump_sse``), each event through the tool
filter; any other answer is read whole (bounded) and filtered before its headers go out. The
exchange is raced (``race``) against the client's disconnect and the stream re-checks
(``gateway.watch``), so a departed client or a revoked token ends it at once, and no thread is
pinned per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx

from gatehouse import database
from gateway import policy
from gateway.context import Context
from gateway.errors import Refusal, SessionNotFound, Unauthorized, UpstreamUnavailable, render
from gateway.exchange import Responder, UpstreamRejected, response_headers, wait_for_disconnect
from gateway.pipeline import Receive
from gateway.sse import MAX_EVENT_BYTES, SseEvent, SseParser, SseTooLarge, serialize
from gateway.watch import StreamWatch

EventHandler = Callable[[SseEvent], Awaitable[bytes]]


async def race(work: Awaitable[None], *, receive: Receive, watch: StreamWatch | None) -> str:
    """Run ``work`` until it ends, the client disconnects, or the watch ends the stream.

    Returns which came first: ``"done"``, ``"client"`` or ``"watch"``; the others are cancelled.
    """
    tasks: dict[asyncio.Future[object], str] = {
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


async def end_by_watch(ctx: Context, responder: Responder, watch: StreamWatch) -> None:
    """Answer a request whose token or session a re-check found dead (not audited as a refusal)."""
    ctx.notes["ended_by"] = watch.reason
    if responder.started:
        await responder.finish()
        return
    if watch.reason == "token_invalid":
        refusal: Refusal = Unauthorized("The token is no longer valid.", presented=True)
    elif watch.reason == "recheck_failed":
        refusal = Refusal(database.DETAIL, status=503, code=database.ERROR_CODE, audit=False,
                          headers=[(b"retry-after", str(database.RETRY_AFTER_SECONDS).encode())])
    else:
        refusal = SessionNotFound("The session has ended; start a new one.")
    await responder.whole(*render(refusal))


async def pump_sse(upstream: httpx.Response, responder: Responder, on_event: EventHandler) -> None:
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


def tool_filter(ctx: Context) -> EventHandler:
    """The per-event tool filter: a ``tools/list`` result is cut to the token's allowlist."""
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


async def relay(
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
        await pump_sse(upstream, responder, tool_filter(ctx))
    else:
        assert ctx.admission is not None
        body = await read_bounded(upstream, limit=MAX_EVENT_BYTES)
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


async def read_bounded(upstream: httpx.Response, *, limit: int) -> bytes:
    """A whole upstream answer that must be read before relaying it, no larger than one SSE event may be."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in upstream.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UpstreamUnavailable(f"The upstream's answer is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def check_upstream_status(upstream: httpx.Response) -> None:
    """Refuse to relay the upstream refusing our credentials, or a redirect."""
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

"""Relaying an upstream answer to the client: unbuffered, filtered, and cancellable.

An SSE answer goes out event by event as it arrives (``pump_sse``), each event through the tool
filter; any other answer is read whole (bounded) and filtered before its headers go out. The
exchange is raced (``race``) against the client's disconnect and the stream re-checks
(``gateway.sessions.watch``), so a departed client or a revoked token ends it at once, and no thread is
pinned per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from django.conf import settings

from gateway.mcp import policy, tool_pins
from gateway.mcp.sse_events import MAX_EVENT_BYTES, SseEvent, SseParser, SseTooLarge, serialize
from gateway.pipeline.context import Context
from gateway.pipeline.refusing import end_stream
from gateway.pipeline.steps import Receive
from gateway.request.incoming import wait_for_disconnect
from gateway.request.refusals import (
    DatabaseUnavailable,
    Refusal,
    SessionNotFound,
    Unauthorized,
    UpstreamStalled,
    UpstreamUnavailable,
    render,
)
from gateway.request.responder import Responder
from gateway.sessions.watch import StreamWatch
from gateway.upstream.answers import filter_tools_answer, read_bounded, relay_error
from gateway.upstream.hop import response_headers
from upstreams import body as upstream_body

logger = logging.getLogger("gatehouse.gateway")

EventHandler = Callable[[SseEvent], Awaitable[bytes]]


async def race(work: Awaitable[None], *, receive: Receive, watch: StreamWatch | None) -> str:
    """Run ``work`` until it ends, the client disconnects, or the watch ends the stream.

    Returns which came first: ``"done"``, ``"client"`` or ``"watch"``. ``work`` runs in the
    calling task, which the first of the others cancels (an idle stream holds hours: a task for
    the work and an ``asyncio.wait`` over three were about 2 KB of its memory, and a task per
    request is CPU); only the client's disconnect needs a task, to read ``receive``.
    """
    task = asyncio.current_task()
    assert task is not None
    stop = _Stop(task)
    client = asyncio.ensure_future(wait_for_disconnect(receive))
    client.add_done_callback(stop.by_client)
    if watch is not None:
        watch.ended.add_done_callback(stop.by_watch)
    try:
        await work
    except asyncio.CancelledError:
        # Ours unless the task was also cancelled from outside (then that cancel goes on).
        if stop.reason and not stop.settle():
            return stop.reason
        raise
    finally:
        stop.settle()
        if watch is not None:
            watch.ended.remove_done_callback(stop.by_watch)
        client.cancel()
        try:
            await client
        except asyncio.CancelledError:
            # The client task's own cancel, unless the server cancelled us meanwhile (then that
            # cancel, handed to the task we awaited, must go on).
            if stop.cancelled_from_outside():
                raise
    return stop.reason or "done"


class _Stop:
    """The first of the client's disconnect and the watch to come cancels the racing task, once.

    Callbacks run while the task waits inside the work, so the cancel always lands there.
    """

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        # Cancels the task already had when the race began are not ours to judge.
        self._before = task.cancelling()
        self.reason = ""
        self._settled = False

    def _stop(self, reason: str) -> None:
        if not self.reason and not self._settled:
            self.reason = reason
            self._task.cancel()

    def by_client(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled():
            self._stop("client")

    def by_watch(self, done: asyncio.Future[None]) -> None:
        self._stop("watch")

    def settle(self) -> bool:
        """No more cancels; withdraw ours. True if the task is still being cancelled from outside."""
        if not self._settled:
            self._settled = True
            if self.reason:
                self._task.uncancel()
        return self.cancelled_from_outside()

    def cancelled_from_outside(self) -> bool:
        return self._task.cancelling() > self._before


# Why the gateway ended a stream, by watch end reason, for the JSON-RPC errors of its pending
# requests. Any other reason (a new kind of re-check) gets ``_WATCH_END_DEFAULT``.
_WATCH_END_MESSAGES = {
    "token_invalid": "The token is no longer valid (revoked, expired or rotated out); "
                     "the gateway ended the stream.",
    "session_ended": "The session has ended; the gateway ended the stream. Start a new session.",
    "recheck_failed": "The gateway could not re-check the token with its database, so it ended "
                      "the stream. Try again shortly.",
}
_WATCH_END_DEFAULT = "The gateway ended the stream."


async def end_by_watch(ctx: Context, responder: Responder, watch: StreamWatch) -> None:
    """Answer a request whose token or session a re-check found dead (not audited as a refusal).

    Once headers are out, each pending request of an event stream gets a JSON-RPC error saying
    why (``end_stream``); before that, the HTTP answer the reason calls for.
    """
    reason = watch.reason or "ended"
    ctx.notes.ended_by = reason
    if responder.started:
        message = _WATCH_END_MESSAGES.get(reason, _WATCH_END_DEFAULT)
        await end_stream(ctx, responder, message=message, reason=reason)
        return
    refusal: Refusal
    if reason == "token_invalid":
        refusal = Unauthorized("The token is no longer valid.", presented=True)
    elif reason == "session_ended":
        refusal = SessionNotFound("The session has ended; start a new one.")
    elif reason == "recheck_failed":
        refusal = DatabaseUnavailable()
    else:
        refusal = Refusal(_WATCH_END_DEFAULT, status=503, code="stream_ended")
    await responder.whole(*render(refusal))


FIRST_EVENT = "upstream_first_event_timeout"
IDLE = "upstream_stream_idle"


async def pump_sse(
    upstream: httpx.Response, responder: Responder, on_event: EventHandler, *, awaits_answer: bool
) -> None:
    """Forward each complete upstream event the moment it arrives (rewritten where needed).

    An event the stream ends before completing is dropped, as clients drop it. The upstream's
    silence is bounded: only a complete SSE block (an event, or a keep-alive comment) is a sign
    of life, so neither nothing nor a trickle of bytes that never completes an event holds the
    client forever. ``awaits_answer`` (a POST's answer): the first block must come within
    ``STREAM_FIRST_EVENT_SECONDS``; after it, and on other streams from the start, blocks may be
    at most ``STREAM_IDLE_SECONDS`` apart. A stall raises ``UpstreamStalled``. Meanwhile the client
    gets a keep-alive comment every ``STREAM_KEEPALIVE_SECONDS`` it got nothing else.
    """
    parser = SseParser()
    chunks = upstream_body.reader(upstream)
    bound, which = (
        (settings.STREAM_FIRST_EVENT_SECONDS, FIRST_EVENT) if awaits_answer
        else (settings.STREAM_IDLE_SECONDS, IDLE)
    )
    last_life = time.monotonic()
    try:
        while True:
            deadline = last_life + bound
            wake = deadline
            if responder.can_keepalive:
                wake = min(wake, responder.last_sent + settings.STREAM_KEEPALIVE_SECONDS)
            chunk = await chunks.read(max(0.0, wake - time.monotonic()))
            if chunk is None:
                if time.monotonic() >= deadline:
                    raise _stalled(which, bound)
                await responder.keepalive()
                continue
            if not chunk:
                break
            events = parser.feed(chunk)
            if events:
                last_life = time.monotonic()
                bound, which = settings.STREAM_IDLE_SECONDS, IDLE
            out = [await on_event(event) for event in events]
            await responder.body(b"".join(out))
        out = [await on_event(event) for event in parser.close()]
    except SseTooLarge as exc:
        raise UpstreamUnavailable(f"The upstream sent an event larger than {MAX_EVENT_BYTES} bytes.") from exc
    finally:
        await chunks.aclose()
    await responder.body(b"".join(out))


def _stalled(which: str, bound: float) -> UpstreamStalled:
    if which == FIRST_EVENT:
        detail = f"The upstream server sent no event within {bound:g} s of starting its answer."
    else:
        detail = f"The upstream server sent no event for {bound:g} s; the gateway ended the stream."
    return UpstreamStalled(detail, reason=which)


def tool_filter(ctx: Context) -> EventHandler:
    """The per-event tool filter: a ``tools/list`` result is cut to the token's allowlist."""
    assert ctx.admission is not None
    allowed = ctx.admission.token.scope.servers.get(ctx.admission.server.name)
    pins = tool_pins.PinFilter(ctx.admission.server)

    async def on_event(event: SseEvent) -> bytes:
        if not event.is_message:
            return event.raw
        ctx.note_relayed(event.data)
        try:
            filtered = policy.filter_tools_payload(event.data, allowed, pins)
            await pins.flush()
        except policy.UncheckableAnswer:
            ctx.notes.uncheckable_events_dropped = (ctx.notes.uncheckable_events_dropped or 0) + 1
            return b""
        if filtered is None:
            return event.raw
        ctx.notes.tools_filtered = True
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
    if upstream.status_code >= 400:
        await relay_error(ctx, upstream, responder, session_id=session_id)
        return
    headers = response_headers(upstream, session_id=session_id)
    content_type = upstream.headers.get("content-type", "").lower()
    if content_type.startswith("text/event-stream"):
        await responder.start_stream(upstream.status_code, headers)
        await pump_sse(upstream, responder, tool_filter(ctx), awaits_answer=ctx.incoming.method == "POST")
    else:
        body = await read_bounded(upstream, limit=MAX_EVENT_BYTES)
        filtered = await filter_tools_answer(ctx, body)
        if filtered is not None:
            ctx.notes.tools_filtered = True
        await responder.start(upstream.status_code, headers)
        await responder.body(filtered if filtered is not None else body)
    await responder.finish()



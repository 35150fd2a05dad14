"""``Responder``: the one object that sends a gateway response, so nothing is sent twice or out of order.

It holds the headers of an answer that waits for its first byte (a legacy stream waits for its
rewritten ``endpoint`` event), starts event streams at once (headers plus an empty chunk, which
makes daphne write them), serialises writes with a lock (the relay, keep-alives and a legacy
stream's injected refusals share it) and counts what went out for the audit row.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.request import request_metrics
from gateway.request.incoming import RawHeaders

KEEPALIVE_COMMENT = b": keepalive\n\n"


class Responder:
    """Sends one ASGI response and counts what went out."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self.started = False
        self.finished = False
        self.status = 0
        self.bytes_out = 0
        # An event stream: once its headers are out, the gateway may still add events of its own
        # (keep-alive comments, the JSON-RPC errors of a stream it ends).
        self.is_event_stream = False
        # When the client last got something (monotonic): keep-alives fill the silences.
        self.last_sent = 0.0
        self._lock = asyncio.Lock()
        self._pending: tuple[int, RawHeaders] | None = None

    async def start(self, status: int, headers: RawHeaders) -> None:
        self._pending = None
        self.started = True
        self.status = status
        self.last_sent = time.monotonic()
        request_metrics.client_headers_sent(event_stream=self.is_event_stream)
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def start_stream(self, status: int, headers: RawHeaders) -> None:
        """Start an event stream and put its headers on the wire now.

        daphne (Twisted) writes the headers only with the first body write; an empty chunk is
        such a write, so the client learns at once that its stream is open, however long the
        first event takes.
        """
        async with self._lock:
            self.is_event_stream = True
            await self.start(status, headers)
            await self._send({"type": "http.response.body", "body": b"", "more_body": True})

    def start_with_first_byte(self, status: int, headers: RawHeaders, *, event_stream: bool = False) -> None:
        """Send these headers with the first body byte (or the end): a failure before then can
        still be answered with a proper error instead of an empty 200."""
        self._pending = (status, headers)
        self.is_event_stream = event_stream

    @property
    def can_keepalive(self) -> bool:
        """An event stream whose headers are out and which has not ended."""
        return self.is_event_stream and self.started and not self.finished

    async def _send_pending_start(self) -> None:
        if self._pending is not None:
            await self.start(*self._pending)

    async def body(self, chunk: bytes) -> None:
        if not chunk or self.finished:
            return
        async with self._lock:  # the headers and this chunk go out before any other writer's
            await self._send_pending_start()
            self.bytes_out += len(chunk)
            self.last_sent = time.monotonic()
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def keepalive(self) -> None:
        """An SSE comment for an open event stream whose headers are out (clients ignore it)."""
        if self.can_keepalive:
            await self.body(KEEPALIVE_COMMENT)

    async def finish(self, chunk: bytes = b"") -> None:
        if self.finished:
            return
        async with self._lock:
            await self._send_pending_start()
            self.finished = True
            self.bytes_out += len(chunk)
            await self._send({"type": "http.response.body", "body": chunk, "more_body": False})

    async def whole(self, status: int, headers: RawHeaders, body: bytes) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await self.start(status, headers)
        await self.finish(body)

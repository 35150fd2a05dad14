"""The incoming request: an ASGI scope as an ``Incoming``, its inbound checks, its bounded body.

Nothing here decides policy; the admission step (``gateway.pipeline.steps``) calls these checks
before anything else, and the flows read the body with ``read_body``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from gateway.request.refusals import BadRequest, BodyTooLarge, OriginNotAllowed

Scope = dict[str, Any]
RawHeaders = list[tuple[bytes, bytes]]


class ClientGone(Exception):
    """The client disconnected before the exchange finished."""


@dataclass
class Incoming:
    method: str
    path: str
    query_string: str
    # The ASGI scope's own header list, not a decoded copy: an idle stream keeps its request for
    # hours, and a copy was about 1.7 KB of each one's memory (make bench, tracemalloc).
    raw_headers: Sequence[tuple[bytes, bytes]]
    client_ip: str | None
    user_agent: str
    server_name: str | None
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_scope(cls, scope: Scope) -> Incoming:
        raw_headers = scope.get("headers", [])
        client = scope.get("client") or (None, None)
        kwargs = scope.get("url_route", {}).get("kwargs", {})
        user_agent = _first(raw_headers, b"user-agent") or ""
        return cls(
            method=scope.get("method", "GET").upper(),
            path=scope.get("path", ""),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            raw_headers=raw_headers,
            client_ip=client[0],
            user_agent=user_agent[:300],
            server_name=kwargs.get("server"),
        )

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(lower-case name, value) pairs, decoded afresh (a few times per request, never kept)."""
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self.raw_headers]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case)."""
        return _first(self.raw_headers, name.encode("latin-1"))

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)


def _first(raw_headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in raw_headers if k.lower() == name), None)


def check_origin(incoming: Incoming) -> None:
    """A browser Origin that is not allowed gets 403 (DNS rebinding); no Origin is fine."""
    origin = incoming.header("origin")
    if origin is None:
        return
    allowed = {o.rstrip("/").lower() for o in settings.ALLOWED_ORIGINS}
    if origin.rstrip("/").lower() not in allowed:
        raise OriginNotAllowed("This browser origin may not call the gateway.")


def check_declared_length(incoming: Incoming) -> None:
    declared = incoming.header("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise BadRequest("Content-Length is not a number.")
    if int(declared) > settings.MAX_BODY_BYTES:
        raise BodyTooLarge(f"The request body exceeds {settings.MAX_BODY_BYTES} bytes.")


async def read_body(receive: Any, *, limit: int) -> bytes:
    """The whole request body, counting bytes as they stream in (Content-Length may lie)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_for_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return

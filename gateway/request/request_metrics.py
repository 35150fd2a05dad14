"""The gateway's observations for ``core.metrics``: one call per finished request.

What Gatehouse adds and what the upstream takes are timed apart, per request, on a ``Clock`` the
request's task carries in a context variable (``asgi_app`` starts it; ``open_upstream`` and the
``Responder`` mark it), so no function signature grows a timing argument:

    added    = (client's response headers - arrival) - time waiting for upstream headers
    upstream = time from dialling the upstream to its response headers (summed over the request's
               upstream hops, e.g. a legacy SSE stream's first)

A refusal is counted (by reason) but has no upstream time and no "added" observation: it never
left the gateway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass

from core import metrics
from core.metrics import GaugeMetricFamily
from gateway import selectors


@dataclass
class Clock:
    upstream_seconds: float = 0.0
    client_headers_at: float = 0.0
    # An event stream this request opened to its client, counted in ``OPEN_STREAMS`` until the end.
    stream_open: bool = False


_clock: ContextVar[Clock | None] = ContextVar("gatehouse_request_clock", default=None)


def start_request() -> Token[Clock | None]:
    return _clock.set(Clock())


def end_request(token: Token[Clock | None]) -> None:
    clock = _clock.get()
    if clock is not None and clock.stream_open:
        metrics.get().open_streams.dec()
    _clock.reset(token)


def upstream_waited(seconds: float) -> None:
    clock = _clock.get()
    if clock is not None:
        clock.upstream_seconds += seconds


def client_headers_sent(*, event_stream: bool) -> None:
    clock = _clock.get()
    if clock is None or clock.client_headers_at:
        return
    clock.client_headers_at = time.monotonic()
    if event_stream:
        clock.stream_open = True
        metrics.get().open_streams.inc()


def forwarded(*, server: str, tool: str, status: int, arrived: float) -> None:
    """A request the upstream answered (any status): counted, and its two times observed."""
    metrics.observe_request(server=server, tool=tool, outcome="error" if status >= 400 else "success",
                            status=status)
    clock = _clock.get()
    if clock is None:
        return
    series = metrics.get()
    if clock.upstream_seconds:
        series.upstream_seconds.labels(server=server).observe(clock.upstream_seconds)
    if clock.client_headers_at:
        series.added_seconds.observe(max(0.0, clock.client_headers_at - arrived - clock.upstream_seconds))


def refused(*, reason: str, server: str, tool: str, status: int) -> None:
    """A refusal: by reason, and as a request (``server`` only once admission found one)."""
    metrics.get().refusals.labels(reason=reason).inc()
    metrics.observe_request(server=server, tool=tool if server else "",
                            outcome="error" if status >= 500 else "denied", status=status)


def live_sessions() -> Iterable[GaugeMetricFamily]:
    """``gatehouse_live_sessions{server}``: active sessions, counted in the database at scrape time."""
    family = GaugeMetricFamily("gatehouse_live_sessions", "Active MCP sessions, by server.",
                               labels=["server"])
    for server, count in sorted(selectors.live_session_counts().items()):
        family.add_metric([server], count)
    yield family

"""Prometheus metrics: every series Gatehouse exports, defined once, shared by all processes.

Several daphne processes (and Celery workers, and management commands such as ``revoke_token``)
on one host write into one directory with prometheus-client's multiprocess mode: each process
keeps its own memory-mapped files (made on first use, see ``get``) under ``settings.METRICS_DIR``
(``GATEHOUSE_METRICS_DIR``, default ``<data dir>/metrics``), and a scrape of ``/metrics`` on any
process sums them. So a counter counts what every process did, and the number of open streams is
the sum over the live processes (gauges in ``livesum`` mode: a process that exits, or died, stops
counting once it is marked dead, which every scrape does for processes that no longer exist).

The value class is chosen when prometheus-client is first imported, from the environment, so this
module sets ``PROMETHEUS_MULTIPROC_DIR`` before importing it; nothing else imports the library.

On the hot path an observation is a dict lookup and a write into a memory-mapped file under a
per-process lock (``make bench`` covers it: docs/performance.md).

Label values are bounded: servers are registered names (or ``""`` before one was found), tools are
capped per process (``MAX_TOOL_LABELS``; past that, ``"other"``), so a client that sends random
names cannot create a series per request.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

# Before prometheus-client is imported: it picks its multiprocess value class from this variable.
_DIR = str(settings.METRICS_DIR)
if "prometheus_client" in sys.modules and os.environ.get("PROMETHEUS_MULTIPROC_DIR") != _DIR:
    raise RuntimeError("prometheus_client was imported before core.metrics: import it only from here.")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _DIR

from prometheus_client import (  # noqa: E402  (after the environment above, as explained)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402  (re-exported for collectors)
from prometheus_client.registry import Collector  # noqa: E402

# Sub-millisecond to seconds: what a gateway adds sits in the first buckets, upstreams in the rest.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_TOOL_LABELS = 500
OTHER = "other"


__all__ = [
    "GaugeMetricFamily", "Metrics", "exposition", "get", "observe_request", "register_scrape_collector",
]


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    refusals: Counter
    added_seconds: Histogram
    upstream_seconds: Histogram
    open_streams: Gauge
    revocations: Counter
    revoke_to_close_seconds: Histogram
    audit_pending: Gauge
    audit_lag_seconds: Histogram
    rate_limited: Counter


@functools.cache
def get() -> Metrics:
    """The series, made on first use: a process that never observes anything (``collectstatic`` in
    the image build) creates no files, and the directory exists before the first file is opened."""
    _directory().mkdir(parents=True, exist_ok=True)
    return Metrics(
        requests=Counter(
            "gatehouse_gateway_requests",
            "Gateway requests by server, tool (tools/call only), outcome (success, error, denied) "
            "and status.",
            ["server", "tool", "outcome", "status"],
        ),
        refusals=Counter(
            "gatehouse_gateway_refusals",
            "Gateway requests refused, by reason (the error code in the JSON body).",
            ["reason"],
        ),
        added_seconds=Histogram(
            "gatehouse_gateway_added_seconds",
            "Time Gatehouse adds to a forwarded request: before dialling the upstream, and from the "
            "upstream's response headers to the client's.",
            buckets=LATENCY_BUCKETS,
        ),
        upstream_seconds=Histogram(
            "gatehouse_upstream_seconds", "Upstream time to response headers, by server.", ["server"],
            buckets=LATENCY_BUCKETS,
        ),
        open_streams=Gauge(
            "gatehouse_gateway_open_streams",
            "Event streams open to clients right now (summed over live processes).",
            multiprocess_mode="livesum",
        ),
        revocations=Counter("gatehouse_token_revocations", "Tokens revoked (console, API, command)."),
        revoke_to_close_seconds=Histogram(
            "gatehouse_revoke_to_stream_close_seconds",
            "From a token's revocation to the end of an open stream that used it.",
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0),
        ),
        audit_pending=Gauge(
            "gatehouse_audit_pending_events",
            "Audit events queued in gateway processes, not yet written (summed over live processes).",
            multiprocess_mode="livesum",
        ),
        audit_lag_seconds=Histogram(
            "gatehouse_audit_batch_lag_seconds",
            "From an audit event's submission to its batch being written.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
        ),
        rate_limited=Counter(
            "gatehouse_rate_limited", "Requests over a rate limit, by limit (token, ip, api_key).", ["limit"],
        ),
    )


def _directory() -> Path:
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


_tools_seen: set[tuple[str, str]] = set()


def tool_label(server: str, tool: str) -> str:
    """``tool`` as a label value, or ``"other"`` once this process has seen enough distinct ones."""
    if not tool or (server, tool) in _tools_seen:
        return tool
    if len(_tools_seen) >= MAX_TOOL_LABELS:
        return OTHER
    _tools_seen.add((server, tool))
    return tool


_request_series: dict[tuple[str, str, str, int], Any] = {}


def observe_request(*, server: str, tool: str, outcome: str, status: int) -> None:
    # The labelled child is cached: ``labels()`` takes a lock and builds a key on every call.
    key = (server, tool_label(server, tool), outcome, status)
    child = _request_series.get(key)
    if child is None:
        child = _request_series[key] = get().requests.labels(
            server=server, tool=key[1], outcome=outcome, status=str(status))
    child.inc()


# What a scrape adds from the database (live sessions): registered by the apps that know it.
ScrapeCollector = Callable[[], Iterable[GaugeMetricFamily]]
_scrape_collectors: list[ScrapeCollector] = []


def register_scrape_collector(collect: ScrapeCollector) -> None:
    """Add ``collect`` to every scrape (read at scrape time, e.g. a count from the database)."""
    if collect not in _scrape_collectors:
        _scrape_collectors.append(collect)


class _ScrapeTime(Collector):
    def collect(self) -> Iterable[GaugeMetricFamily]:
        for collect in _scrape_collectors:
            yield from collect()


_FILE_PID = re.compile(r"_(\d+)\.db$")


def forget_dead_processes() -> None:
    """Mark processes whose files are here but which no longer run as dead (their live gauges go)."""
    for path in _directory().glob("gauge_live*_*.db"):
        match = _FILE_PID.search(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not _running(pid):
            multiprocess.mark_process_dead(pid, str(_directory()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """The text every process's files add up to, plus the scrape-time series: (body, content type)."""
    get()
    forget_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(_directory()))
    registry.register(_ScrapeTime())
    return generate_latest(registry), CONTENT_TYPE_LATEST


@atexit.register
def _mark_self_dead() -> None:
    if get.cache_info().currsize:  # only a process that made files has any to retire
        multiprocess.mark_process_dead(os.getpid(), str(_directory()))

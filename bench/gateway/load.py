"""The load client of ``make bench``: aiohttp, the same for every target (ratios are what count).

httpx 0.28 as a load client measures itself more than the server, so it is not used here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

JSON = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
STREAM = {"Accept": "text/event-stream"}
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _connector(limit: int = 0) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=limit, force_close=False)


async def requests(url: str, *, headers: Mapping[str, str], concurrency: int, total: int) -> dict[str, float]:
    """``total`` tools/call POSTs from ``concurrency`` workers on kept-alive connections."""
    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0
    sent = {**JSON, **headers}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            body = {
                "jsonrpc": "2.0",
                "id": i,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            started = time.perf_counter()
            async with session.post(url, json=body, headers=sent) as response:
                await response.read()
                errors += response.status != 200
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=_connector(concurrency)) as session:
        for _ in range(min(100, total)):  # warm-up: connections, caches
            async with session.post(
                url, json={"jsonrpc": "2.0", "id": 0, "method": "ping"}, headers=sent
            ) as r:
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "rps": round(total / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50) * 1000, 2),
        "p90_ms": round(pct(latencies, 0.90) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "errors": errors,
    }


async def open_session(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str]) -> str | None:
    """Initialize through ``url``; the session id it hands out (None: stateless target)."""
    async with session.post(url, json=INIT, headers={**JSON, **headers}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"initialize through {url}: {response.status}")
        return response.headers.get("mcp-session-id")


async def _events(response: aiohttp.ClientResponse) -> Any:
    """Yield (arrival perf_counter, data dict) per SSE event."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    yield time.perf_counter(), json.loads(line[5:])


async def stream_timing(
    url: str, *, headers: Mapping[str, str], streams: int = 10, events: int = 20, every_ms: int = 10
) -> dict[str, float]:
    """Time to first event of a GET stream, and each later event's delay after the upstream sent it."""
    first: list[float] = []
    delays: list[float] = []
    async with aiohttp.ClientSession(connector=_connector()) as session:
        sid = await open_session(session, url, headers)
        sent = {**STREAM, **headers, **({"Mcp-Session-Id": sid} if sid else {})}
        for _ in range(streams):
            started = time.perf_counter()
            async with session.get(f"{url}?events={events}&every={every_ms}", headers=sent) as response:
                if response.status != 200:
                    raise RuntimeError(f"GET stream through {url}: {response.status}")
                async for arrived, data in _events(response):
                    n = data["params"]["data"]["n"]
                    if n == 0:
                        first.append(arrived - started)
                    else:
                        # Both clocks are this machine's: arrival in wall time minus the send time.
                        delays.append(
                            time.time() - (time.perf_counter() - arrived) - data["params"]["data"]["sent"]
                        )
                    if n == events:
                        break
    return {
        "first_event_ms": round(statistics.median(first) * 1000, 2),
        "event_delay_p50_ms": round(statistics.median(delays) * 1000, 3),
        "event_delay_p99_ms": round(pct(delays, 0.99) * 1000, 3),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its children that are still running
    (nginx's workers), read from ``/proc``: what the proxy itself spends, not the load client or
    the upstream (or PostgreSQL and Redis, which run outside the tree)."""
    ticks = os.sysconf("SC_CLK_TCK")
    tree = {pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # the field after the state is the parent's pid
                tree.add(int(stat.parent.name))
    used = 0
    for each in tree:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            used += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return used / ticks


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def idle_streams(
    url: str, *, headers: Mapping[str, str], pid: int, counts: tuple[int, ...]
) -> dict[str, Any]:
    """Open idle GET streams up to each of ``counts`` and report the server's RSS per stream."""
    out: dict[str, Any] = {}
    held: list[aiohttp.ClientResponse] = []
    async with aiohttp.ClientSession(
        connector=_connector(), timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        sid = await open_session(session, url, headers)
        sent = {**STREAM, **headers, **({"Mcp-Session-Id": sid} if sid else {})}
        await asyncio.sleep(1)
        base = rss_kb(pid)
        out["rss_before_kb"] = base

        async def one() -> aiohttp.ClientResponse:
            response = await session.get(url, headers=sent)
            if response.status != 200:
                raise RuntimeError(f"idle stream through {url}: {response.status}")
            await response.content.readuntil(b"\n\n")  # the first event: the stream is up end to end
            return response

        try:
            for count in counts:
                while len(held) < count:
                    batch = min(50, count - len(held))
                    held += await asyncio.gather(*(one() for _ in range(batch)))
                await asyncio.sleep(2)
                now = rss_kb(pid)
                out[str(count)] = {"rss_kb": now, "kb_per_stream": round((now - base) / count, 1)}
        except (RuntimeError, aiohttp.ClientError) as exc:
            # Reported in the table rather than losing the whole run's figures.
            out["failed"] = f"with {len(held)} streams open: {exc}"
        for response in held:
            response.close()
    return out

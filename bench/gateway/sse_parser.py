"""How the SSE parser's cost grows with event size, as a ratio to just receiving the bytes.

    .venv/bin/python -m bench.gateway.sse_parser

Each event arrives in 64 KiB chunks, as from a socket. The baseline run side by side only
appends the chunks to a buffer; the ratio stays flat when parsing is linear in the event size
(the parser before this bench re-scanned the whole buffer per chunk: 8 MiB took ~12 s).
"""

from __future__ import annotations

import time

from gateway.mcp.sse_events import SseParser

CHUNK = 64 * 1024


def _chunks(size: int) -> list[bytes]:
    stream = b"data: " + b"a" * size + b"\n\n"
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def _receive(chunks: list[bytes]) -> float:
    started = time.perf_counter()
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
    return time.perf_counter() - started


def _parse(chunks: list[bytes]) -> float:
    started = time.perf_counter()
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    assert len(events) == 1
    return time.perf_counter() - started


def main() -> None:
    print(f"{'event':>8} {'receive':>10} {'parse':>10} {'ratio':>7}")
    for mib in (1, 4, 16, 32 - 1):
        chunks = _chunks(mib * 1024 * 1024)
        receive = min(_receive(chunks) for _ in range(3))
        parse = min(_parse(chunks) for _ in range(3))
        print(f"{mib:>5} MiB {receive * 1000:>8.1f}ms {parse * 1000:>8.1f}ms {parse / receive:>7.1f}")


if __name__ == "__main__":
    main()

"""Incremental Server-Sent Events parsing, so each event is forwarded the moment it is complete.

Unmodified events are forwarded byte for byte (``SseEvent.raw``); only events the gateway rewrites
(filtered ``tools/list`` results, the legacy ``endpoint`` event) are re-serialised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(rb"[\r\n]")
_CR = ord("\r")
_BOM = b"\xef\xbb\xbf"
# An event larger than this is a broken or hostile upstream, not an MCP message.
MAX_EVENT_BYTES = 32 * 1024 * 1024


class SseTooLarge(Exception):
    """An upstream SSE event exceeded ``MAX_EVENT_BYTES``."""


@dataclass(frozen=True)
class SseEvent:
    raw: bytes
    event: str
    data: str
    id: str | None
    retry: str | None

    @property
    def is_message(self) -> bool:
        return self.event in ("", "message")


def serialize(*, data: str, event: str = "", event_id: str | None = None) -> bytes:
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class SseParser:
    """Incremental and linear: each byte is scanned once, however an event is split into chunks.

    As the SSE standard says, a leading byte-order mark is skipped, and an event the stream ends
    before completing is discarded (clients discard it too, so forwarding it raw would only let
    it bypass the gateway's rewriting).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()  # from the start of the current, incomplete event
        self._line_start = 0  # where the next unparsed line begins
        self._searched = 0  # no line end before this offset in the current line
        self._fields: list[tuple[str, str]] = []
        self._at_stream_start = True

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Complete events in ``chunk`` (plus what was buffered); a partial tail is kept."""
        self._buffer += chunk
        if self._at_stream_start:
            if _BOM.startswith(bytes(self._buffer[:3])) and len(self._buffer) < len(_BOM):
                return []  # maybe the start of a BOM: wait
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
            self._at_stream_start = False
        return self._scan(final=False)

    def close(self) -> list[SseEvent]:
        """Events the end of the stream completes (a last line ended by a lone CR)."""
        events = self._scan(final=True)
        self._buffer.clear()
        return events

    def _scan(self, *, final: bool) -> list[SseEvent]:
        buffer = self._buffer
        events: list[SseEvent] = []
        event_start = 0
        while True:
            match = _EOL.search(buffer, max(self._line_start, self._searched))
            if match is None:
                self._searched = len(buffer)
                break
            end = match.start()
            if buffer[end] == _CR and end + 1 == len(buffer) and not final:
                self._searched = end  # a lone CR at the very end may be the first half of CRLF
                break
            next_start = end + (2 if buffer[end : end + 2] == b"\r\n" else 1)
            line = bytes(buffer[self._line_start : end])
            self._line_start = self._searched = next_start
            if not line:
                if self._fields or end > event_start:  # comments only still make an event
                    events.append(_build(bytes(buffer[event_start:next_start]), self._fields))
                event_start = next_start
                self._fields = []
                continue
            if line.startswith(b":"):
                continue
            name, sep, value = line.partition(b":")
            if sep and value.startswith(b" "):
                value = value[1:]
            self._fields.append((name.decode("utf-8", "replace"), value.decode("utf-8", "replace")))
        if event_start:
            del buffer[:event_start]
            self._line_start -= event_start
            self._searched -= event_start
        if len(buffer) > MAX_EVENT_BYTES:
            raise SseTooLarge()
        return events


def _build(raw: bytes, fields: list[tuple[str, str]]) -> SseEvent:
    event = ""
    data: list[str] = []
    event_id = None
    retry = None
    for name, value in fields:
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "retry":
            retry = value
    return SseEvent(raw=raw, event=event, data="\n".join(data), id=event_id, retry=retry)

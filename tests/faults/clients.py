"""Clients for the fault tests: a streamed exchange read in a thread, with when each thing arrived."""

from __future__ import annotations

import json
import threading
import time

import httpx


class Watched:
    """One streamed exchange, timed: when the headers came, each line, when the stream ended."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: dict | None) -> None:
        self.started = time.monotonic()
        self.status: int | None = None
        self.headers_at: float | None = None
        self.lines: list[tuple[float, str]] = []
        self.ended_at: float | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(method, url, headers, body), daemon=True)
        self._thread.start()

    def _run(self, method: str, url: str, headers: dict[str, str], body: dict | None) -> None:
        try:
            content = json.dumps(body).encode() if body is not None else None
            with httpx.stream(method, url, headers=headers, content=content,
                              timeout=httpx.Timeout(10, read=15)) as response:
                self.status = response.status_code
                self.headers_at = time.monotonic() - self.started
                for line in response.iter_lines():
                    self.lines.append((time.monotonic() - self.started, line))
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic() - self.started

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert self.ended_at is not None, f"the stream is still open after {timeout} s"
        assert self.error is None, repr(self.error)

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def keepalives(self) -> int:
        return sum(line == ": keepalive" for _, line in self.lines)

    def wait_for(self, predicate, timeout: float) -> None:
        """Wait until ``predicate(text)`` holds for what arrived so far."""
        deadline = time.monotonic() + timeout
        while not predicate(self.text):
            assert time.monotonic() < deadline, f"not seen within {timeout} s; got {self.text!r}"
            assert self.ended_at is None, f"the stream ended early: {self.text!r} {self.error!r}"
            time.sleep(0.05)

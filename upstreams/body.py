"""An upstream response body read chunk by chunk, each read bounded by a deadline.

The SSE relay must wake while an upstream is silent (keep-alives, the stall bounds) without
losing the read in flight. ``reader(response)`` picks how:

- On the aiohttp transport (the default, ``upstreams.http``) the response's own buffer is read
  under ``asyncio.timeout``: a read that times out loses nothing (aiohttp keeps what arrives
  buffered), and it costs no task and no ``asyncio.wait``.
- httpx's byte iterators cannot go on once a read inside them is cancelled, so elsewhere (the
  httpx transport, or a body with a Content-Encoding that httpx must decode) each read runs in a
  task of its own that outlives a timeout.

Why: the task-per-read path (the task, its ``asyncio.wait`` and the chain of generators and
context managers under httpx's ``aiter_bytes``) was a sizeable share of each idle stream's memory;
``make bench`` measures idle streams (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import httpx
from httpx_aiohttp.transport import map_aiohttp_exceptions

from upstreams.http import AIOHTTP_CONTENT


class ChunkReader(Protocol):
    async def read(self, timeout: float) -> bytes | None:
        """The next bytes; ``None`` if none came within ``timeout`` seconds; ``b""`` at the end.

        Raises httpx's errors (``httpx.ReadError`` for a broken body) on either transport.
        """

    async def aclose(self) -> None:
        """Stop a read in flight (the response itself is closed by whoever opened it)."""


def reader(response: httpx.Response) -> ChunkReader:
    content = _aiohttp_content(response)
    if content is not None:
        return _BufferReader(content)
    return _TaskReader(response.aiter_bytes())


def _aiohttp_content(response: httpx.Response) -> aiohttp.StreamReader | None:
    """aiohttp's buffer behind a response of our aiohttp transport, when its bytes need no
    decoding (httpx decodes a Content-Encoding; the buffer holds the bytes as sent)."""
    content = response.extensions.get(AIOHTTP_CONTENT)
    if not isinstance(content, aiohttp.StreamReader):
        return None
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        return None
    return content


class _BufferReader:
    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def read(self, timeout: float) -> bytes | None:
        deadline = asyncio.timeout(timeout)
        try:
            with map_aiohttp_exceptions():
                async with deadline:
                    return await self._content.readany()
        except TimeoutError:
            if deadline.expired():
                return None
            raise

    async def aclose(self) -> None:
        return None


class _TaskReader:
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending: asyncio.Future[bytes] | None = None

    async def _next(self) -> bytes:
        async for chunk in self._chunks:
            if chunk:
                return chunk
        return b""

    async def read(self, timeout: float) -> bytes | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._next())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        finished, self._pending = self._pending, None
        return finished.result()

    async def aclose(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
            try:
                await pending
            except asyncio.CancelledError:
                # The read's own cancel, unless this task is being cancelled too (that goes on).
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            except Exception:  # noqa: BLE001, S110 - a read that failed as it was stopped: nothing to keep
                pass

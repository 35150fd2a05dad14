"""An upstream body read with deadlines: a read that times out loses nothing, on both transports.

The upstream is a raw HTTP/1.1 server on a socket, so the test decides when each byte is sent.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import httpx
import pytest

from upstreams import body
from upstreams.http import TRANSPORTS, build_client

Script = Callable[[asyncio.StreamWriter, asyncio.Event], Awaitable[None]]
Reads = Callable[[body.ChunkReader, asyncio.Event], Awaitable[None]]


def _head(*extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _serve(script: Script, transport: str, reads: Reads) -> None:
    go = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await script(writer, go)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = build_client(transport)
    try:
        async with client.stream("GET", f"http://127.0.0.1:{port}/mcp") as response:
            chunks = body.reader(response)
            try:
                await reads(chunks, go)
            finally:
                await chunks.aclose()
    finally:
        await client.aclose()
        server.close()


async def _two_events(writer: asyncio.StreamWriter, go: asyncio.Event) -> None:
    writer.write(_head() + _chunk(b"data: one\n\n"))
    await writer.drain()
    await go.wait()
    writer.write(_chunk(b"data: two\n\n") + b"0\r\n\r\n")
    await writer.drain()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_read_that_times_out_loses_nothing_and_the_end_reads_empty(transport):
    async def reads(chunks: body.ChunkReader, go: asyncio.Event) -> None:
        assert await chunks.read(5) == b"data: one\n\n"
        assert await chunks.read(0.05) is None  # the upstream is silent
        assert await chunks.read(0) is None
        go.set()
        got = b""
        while (chunk := await chunks.read(5)) != b"":
            assert chunk is not None
            got += chunk
        assert got == b"data: two\n\n"

    asyncio.run(_serve(_two_events, transport, reads))


def test_the_default_transport_reads_aiohttp_s_buffer_without_a_task_per_read():
    """Guards the fast path: it reaches into httpx_aiohttp, so an upgrade that moves what it
    reaches for must fail here, not quietly fall back to a task per read."""
    async def reads(chunks: body.ChunkReader, go: asyncio.Event) -> None:
        assert isinstance(chunks, body._BufferReader)
        before = len(asyncio.all_tasks())
        assert await chunks.read(0.05) == b"data: one\n\n"
        assert await chunks.read(0.05) is None
        assert len(asyncio.all_tasks()) == before
        go.set()

    asyncio.run(_serve(_two_events, "aiohttp", reads))


def test_an_encoded_body_is_decoded_by_httpx_not_passed_on_compressed():
    packed = gzip.compress(b"data: packed\n\n")

    async def script(writer: asyncio.StreamWriter, go: asyncio.Event) -> None:
        writer.write(_head("Content-Encoding: gzip") + _chunk(packed) + b"0\r\n\r\n")
        await writer.drain()

    async def reads(chunks: body.ChunkReader, go: asyncio.Event) -> None:
        assert not isinstance(chunks, body._BufferReader)
        assert await chunks.read(5) == b"data: packed\n\n"
        assert await chunks.read(5) == b""

    asyncio.run(_serve(script, "aiohttp", reads))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_body_cut_short_is_an_httpx_read_error(transport):
    async def script(writer: asyncio.StreamWriter, go: asyncio.Event) -> None:
        writer.write(_head() + b"40\r\ndata: cut")  # a 64-byte chunk that never completes
        await writer.drain()

    async def reads(chunks: body.ChunkReader, go: asyncio.Event) -> None:
        with pytest.raises(httpx.TransportError):
            while await chunks.read(5):
                pass

    asyncio.run(_serve(script, transport, reads))

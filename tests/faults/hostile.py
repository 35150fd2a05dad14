"""Hostile upstreams for the fault tests: raw HTTP servers in a thread that misbehave on purpose.

``StallingUpstream`` answers every request with event-stream headers and then, by path:

- ``/silent``: nothing at all (the connection stays open);
- ``/trickle``: the start of an event, one byte every ``TRICKLE_SECONDS``, never completed;
- ``/one-then-silent``: one complete progress notification, then nothing;
- ``/one-then-reset``: one complete progress notification, then a TCP reset (a dying upstream).

Raw sockets, not a framework: a framework would finish (or ping) what this must leave undone.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import serving_thread

TRICKLE_SECONDS = 0.5
PROGRESS = (
    b'data: {"jsonrpc":"2.0","method":"notifications/progress",'
    b'"params":{"progressToken":"p","progress":1}}\n\n'
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class StallingUpstream:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_request(conn)
            if request is None:
                return
            path = request.split(" ", 2)[1].split("?")[0]
            self.requests.append(request.split("\r\n", 1)[0])
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            try:
                if path.startswith("/trickle"):
                    for byte in b'data: {"jsonrpc":"2.0","id":7,"result":{}}':
                        if self._wait_or_gone(conn, TRICKLE_SECONDS):
                            return
                        conn.sendall(_chunk(bytes([byte])))
                elif path.startswith("/one-then"):
                    conn.sendall(_chunk(PROGRESS))
                    if path.endswith("reset"):
                        time.sleep(0.3)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return  # closing with a zero linger time sends a reset
                self._wait_or_gone(conn, 120)
            except OSError:
                return

    def _read_request(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return None
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")]
        length = int(lengths[0]) if lengths else 0
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        return head.decode("latin-1")

    def _wait_or_gone(self, conn: socket.socket, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the gateway hung up (or the test ended)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            conn.settimeout(min(remaining, 0.2))
            try:
                if conn.recv(1024) == b"":
                    return True
            except TimeoutError:
                continue
        return self._stop.is_set()


@contextlib.contextmanager
def stalling_upstream() -> Iterator[StallingUpstream]:
    upstream = StallingUpstream()
    try:
        yield upstream
    finally:
        upstream.close()


def sse_data(text: str) -> list[dict]:
    """The JSON payloads of the ``data:`` lines of an event-stream text."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def start_scripted_upstream(
    status: int, headers: dict[str, str], body: bytes, *, received: list[dict[str, str]] | None = None
) -> ThreadingHTTPServer:
    """Serve ``status``, ``headers`` and ``body`` to every request (headers of each noted in
    ``received``) on a free loopback port until ``shutdown()``; its endpoint is ``/mcp``."""

    class Scripted(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if received is not None:
                received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    serving_thread(server).start()
    return server


@contextlib.contextmanager
def scripted_upstream(status: int, headers: dict[str, str], body: bytes) -> Iterator[str]:
    """An upstream answering every request with ``status``, ``headers`` and ``body``; yields its URL."""
    server = start_scripted_upstream(status, headers, body)
    try:
        yield f"http://127.0.0.1:{server.server_port}/mcp"
    finally:
        server.shutdown()
        server.server_close()

"""A stand-in upstream that records the DELETEs Gatehouse sends when it ends sessions.

It runs in a thread of the test process, so a Celery worker or daphne subprocess reaches it
over loopback and the test reads what arrived directly. It answers DELETE with
``delete_status`` (200 by default, set 503 to play a struggling upstream); other methods get 405.

``hold_deletes()`` keeps every DELETE waiting (``arrived`` lists them) until ``release_deletes()``;
one whose sender is gone by then (a killed worker) is never answered and counts in ``abandoned``,
not ``deletes``: only an answered DELETE is one the sender can know was delivered.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import serving_thread


@dataclass(frozen=True)
class ReceivedDelete:
    session_id: str
    headers: dict[str, str]


@dataclass
class RecordingUpstream:
    url: str
    delete_status: int = 200
    deletes: list[ReceivedDelete] = field(default_factory=list)
    arrived: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _gate: threading.Event | None = None

    def hold_deletes(self) -> None:
        self._gate = threading.Event()

    def release_deletes(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def deleted_session_ids(self) -> list[str]:
        with self._lock:
            return [d.session_id for d in self.deletes]

    def _record(self, delete: ReceivedDelete) -> None:
        with self._lock:
            self.deletes.append(delete)


def _sender_gone(sock: socket.socket, *, wait: float = 2.0) -> bool:
    # A live sender sends nothing while it waits for the answer; a killed one's socket is closed
    # by its kernel (which may take a moment after the kill returns).
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


@contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    upstream: RecordingUpstream

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            session_id = self.headers.get("Mcp-Session-Id", "")
            status = upstream.delete_status  # read before it is recorded: a test changes it on seeing that
            with upstream._lock:
                upstream.arrived.append(session_id)
            gate = upstream._gate
            if gate is not None and not gate.is_set():  # held: its sender may be gone by the release
                gate.wait(timeout=120)
                if _sender_gone(self.connection):
                    with upstream._lock:
                        upstream.abandoned.append(session_id)
                    self.close_connection = True
                    return
            upstream._record(
                ReceivedDelete(session_id=session_id, headers={k.lower(): v for k, v in self.headers.items()})
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream = RecordingUpstream(url=f"http://127.0.0.1:{server.server_port}/mcp")
    thread = serving_thread(server, name="recording-upstream")
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()

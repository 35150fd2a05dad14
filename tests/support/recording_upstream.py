"""A stand-in upstream that records the DELETEs Gatehouse sends when it ends sessions.

It runs in a thread of the test process, so a Celery worker or daphne subprocess reaches it
over loopback and the test reads what arrived directly. It answers DELETE with
``delete_status`` (200 by default, set 503 to play a struggling upstream); other methods get 405.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class ReceivedDelete:
    session_id: str
    headers: dict[str, str]


@dataclass
class RecordingUpstream:
    url: str
    delete_status: int = 200
    deletes: list[ReceivedDelete] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deleted_session_ids(self) -> list[str]:
        with self._lock:
            return [d.session_id for d in self.deletes]

    def _record(self, delete: ReceivedDelete) -> None:
        with self._lock:
            self.deletes.append(delete)


@contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    upstream: RecordingUpstream

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            upstream._record(
                ReceivedDelete(
                    session_id=self.headers.get("Mcp-Session-Id", ""),
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
            )
            self.send_response(upstream.delete_status)
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
    thread = threading.Thread(target=server.serve_forever, name="recording-upstream", daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()

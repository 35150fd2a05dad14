"""A SIEM's webhook endpoint for the audit webhook tests: verifies signatures, keeps what it accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import serving_thread


class Receiver:
    """A SIEM endpoint: answers ``script`` statuses in turn (then 200) and keeps what it accepted."""

    def __init__(self, port: int, *, secret: str) -> None:
        self.port = port
        self.secret = secret
        self.accepted: list[dict] = []
        self.attempts = 0
        self.script: list[int] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Gatehouse-Timestamp"]
                expected = "sha256=" + hmac.new(receiver.secret.encode(), f"{timestamp}.".encode() + body,
                                                hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.attempts += 1
                    status = receiver.script.pop(0) if receiver.script else 200
                    if not hmac.compare_digest(expected, self.headers["X-Gatehouse-Signature"]):
                        receiver.bad_signatures += 1
                        status = 401
                    elif status == 200:
                        event = json.loads(body)
                        assert str(event["id"]) == self.headers["X-Gatehouse-Event-Id"]
                        receiver.accepted.append(event)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        serving_thread(self._server).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

"""In-process HTTP/TCP servers on a thread: ``shutdown()`` returns within 20 ms, not the 0.5 s of
socketserver's default poll, which a fixture pays on every test's teardown."""

from __future__ import annotations

import socketserver
import threading

SHUTDOWN_POLL_SECONDS = 0.02


def serving_thread(server: socketserver.BaseServer, *, name: str | None = None) -> threading.Thread:
    """A daemon thread (not yet started) that serves ``server`` until its ``shutdown()``."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                            name=name, daemon=True)

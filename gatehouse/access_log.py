"""Access log as JSON lines through Python logging, so the secret-masking filter applies.

Daphne's own access log prints the raw URI (``?key=gth_…`` included) and is turned off with
``daphne --verbosity 0`` wherever Gatehouse starts daphne (Procfile, Dockerfile); this
middleware writes the access log instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from core.asgi_routing import ASGIApp
from core.secrets_mask import mask_query_string

logger = logging.getLogger("gatehouse.access")

# Successful probes are frequent and uninteresting; they are logged at DEBUG.
_PROBE_PATHS = frozenset({"/health", "/ready"})


class AccessLogMiddleware:
    """One line per HTTP request: method, path, masked query string, status, bytes, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        state: dict[str, int] = {"status": 0, "bytes": 0}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            state["status"] = state["status"] or 499  # the client went away first
            raise
        except BaseException:
            state["status"] = state["status"] or 500  # what the server answers for an app error
            raise
        finally:
            _log(scope, status=state["status"], size=state["bytes"], started=started)


def _log(scope: dict[str, Any], *, status: int, size: int, started: float) -> None:
    path = scope.get("path", "")
    method = scope.get("method", "")
    level = logging.DEBUG if path in _PROBE_PATHS and status == 200 else logging.INFO
    if not logger.isEnabledFor(level):
        return
    headers = dict(scope.get("headers") or [])
    client = scope.get("client") or ("", 0)
    logger.log(
        level,
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "http": {
                "method": method,
                "path": path,
                "query": mask_query_string(scope.get("query_string", b"").decode("latin-1")),
                "status": status,
                "bytes": size,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
                "client_ip": client[0],
                "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
            }
        },
    )

"""A tiny ASGI app for the shutdown test: every request queues one gateway-style audit event."""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()

from audit.services import record_later  # noqa: E402


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/health":
        record_later(event="mcp.request", actor="probe", server="demo", detail={"path": scope["path"]})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"queued"})

"""A throwaway flow module for ``test_transport_registry``: one ASGI app under ``/throwaway/<server>/``."""

from __future__ import annotations

import json

from django.urls import URLPattern, re_path

from gateway.flows import SERVER

PREFIX = "throwaway"


async def throwaway_app(scope, receive, send) -> None:
    server = scope["url_route"]["kwargs"]["server"]
    body = json.dumps({"flow": "throwaway", "server": server}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


prefixes = (PREFIX,)
routes: list[URLPattern] = [re_path(rf"^{PREFIX}/{SERVER}/?$", throwaway_app)]

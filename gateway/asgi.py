"""Gateway routes, mounted ahead of Django by ``gatehouse.asgi`` (plain ASGI callables).

Built from the transport registry: each transport's flow module (``Transport.flow``) brings its
``routes``; a catch-all comes last so that anything else under a flow's prefixes gets a JSON 404
(clients of these paths expect JSON, not the console's HTML 404 page).
"""

from __future__ import annotations

import re
from importlib import import_module

from django.urls import URLPattern

from core.asgi_routing import asgi_route
from gateway.pipeline.context import Context
from gateway.pipeline.steps import Receive, asgi_app
from gateway.request.refusals import NoSuchPath
from gateway.request.responder import Responder
from upstreams import transports


async def _no_route(ctx: Context, receive: Receive, responder: Responder) -> None:
    raise NoSuchPath(
        "No gateway endpoint here: use /mcp/<server>/, /mcp/, /sse/<server>/ or /messages/<server>/."
    )


no_route = asgi_app(
    _no_route, doc="Anything else under a flow's prefixes (``/mcp``, ``/sse``, ``/messages``): a JSON 404."
)


def build_urlpatterns() -> list[URLPattern]:
    """Every registered transport's flow routes, in registry order, then the catch-all 404."""
    patterns: list[URLPattern] = []
    prefixes: list[str] = []
    flows: list[str] = []
    for transport in transports.all_transports():
        if transport.flow in flows:
            continue  # a hosted transport served by another's flow (stdio: Streamable HTTP)
        flows.append(transport.flow)
        flow = import_module(transport.flow)
        patterns.extend(flow.routes)
        prefixes.extend(p for p in flow.prefixes if p not in prefixes)
    owned = "|".join(re.escape(prefix) for prefix in prefixes)
    patterns.append(asgi_route(rf"^(?:{owned})(?:/.*)?$", no_route))
    return patterns


urlpatterns: list[URLPattern] = build_urlpatterns()

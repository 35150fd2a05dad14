"""Gateway routes, mounted ahead of Django by ``gatehouse.asgi`` (plain ASGI callables)."""

from django.urls import URLPattern

from gatehouse.asgi_routing import asgi_route
from gateway.proxy import no_route, sse_messages, sse_stream, streamable_http

_SERVER = r"(?P<server>[-a-zA-Z0-9_]{1,64})"

urlpatterns: list[URLPattern] = [
    asgi_route(rf"^mcp/{_SERVER}/?$", streamable_http),
    asgi_route(r"^mcp/?$", streamable_http),
    asgi_route(rf"^sse/{_SERVER}/?$", sse_stream),
    asgi_route(rf"^messages/{_SERVER}/?$", sse_messages),
    # Clients of these prefixes expect JSON, not the console's HTML 404 page.
    asgi_route(r"^(?:mcp|sse|messages)(?:/.*)?$", no_route),
]

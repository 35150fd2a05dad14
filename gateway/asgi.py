"""Gateway routes, mounted ahead of Django by ``gatehouse.asgi`` (plain ASGI callables)."""

from django.urls import URLPattern, re_path

from gateway.proxy import no_route, sse_messages, sse_stream, streamable_http

_SERVER = r"(?P<server>[-a-zA-Z0-9_]{1,64})"

urlpatterns: list[URLPattern] = [
    re_path(rf"^mcp/{_SERVER}/?$", streamable_http),
    re_path(r"^mcp/?$", streamable_http),
    re_path(rf"^sse/{_SERVER}/?$", sse_stream),
    re_path(rf"^messages/{_SERVER}/?$", sse_messages),
    # Clients of these prefixes expect JSON, not the console's HTML 404 page.
    re_path(r"^(?:mcp|sse|messages)(?:/.*)?$", no_route),
]

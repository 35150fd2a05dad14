"""URL routing of plain ASGI apps with Channels' ``URLRouter``, typed once here.

Channels routes any ASGI callable by a Django URL pattern, but Django's stubs type ``re_path``
for views only and Channels' stubs type ``URLRouter`` for consumers only: the two ignores below
are where those stubs are narrower than the libraries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from channels.routing import URLRouter
from django.urls import URLPattern, re_path

# (scope, receive, send) -> awaitable: every ASGI 3 app, typed loosely enough for all of ours.
ASGIApp = Callable[..., Awaitable[None]]


def asgi_route(pattern: str, app: ASGIApp) -> URLPattern:
    """``re_path(pattern, app)`` for an ASGI app rather than a view."""
    return re_path(pattern, app)  # type: ignore[arg-type]  # an ASGI app, not a view: see above


def asgi_router(patterns: Sequence[URLPattern]) -> URLRouter:
    """``URLRouter`` over patterns made by ``asgi_route``."""
    routes: list[Any] = list(patterns)  # plain ASGI apps, not consumers: see above
    return URLRouter(routes)

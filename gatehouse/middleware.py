"""Django middleware of Gatehouse's own."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from core import database

logger = logging.getLogger("gatehouse.console")


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A console or API view that cannot reach the database answers 503, not Django's 500 page.

    The REST API maps the same errors in its own exception handler (``api.errors``); this covers
    everything else Django serves (console pages, login, well-known documents).
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database.is_unavailable(exception):
            return None
        logger.warning("request failed: the database is unavailable (%s)", type(exception).__name__)
        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response: HttpResponse = JsonResponse(
                {"error": database.ERROR_CODE, "detail": database.DETAIL}, status=503
            )
        else:
            response = HttpResponse(
                f"<!doctype html><title>Gatehouse: database unavailable</title><h1>503</h1>"
                f"<p>{database.DETAIL}</p>",
                status=503,
                content_type="text/html; charset=utf-8",
            )
        response["Retry-After"] = str(database.RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response

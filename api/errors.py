"""Every API error becomes ``{"error": code, "detail": message}``: mapped here, in one place.

Domain exceptions (``tokens.exceptions``) carry their meaning; this module only decides the HTTP
status. DRF's own exceptions keep their status (and headers such as ``Retry-After`` and
``WWW-Authenticate``); an unreachable database is a JSON 503 with ``Retry-After``
(``core.database``); anything unexpected is logged and answered with a JSON 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.authentication import WWW_AUTHENTICATE
from core import database
from tokens.exceptions import (
    AuthenticationFailed,
    GatehouseError,
    InvalidTokenRequest,
    InvalidTransition,
    ScopeCeilingExceeded,
    ScopeDenied,
)

logger = logging.getLogger("gatehouse.api")

_DOMAIN_STATUS: list[tuple[type[GatehouseError], int]] = [
    (AuthenticationFailed, status.HTTP_401_UNAUTHORIZED),
    (ScopeCeilingExceeded, status.HTTP_403_FORBIDDEN),
    (ScopeDenied, status.HTTP_403_FORBIDDEN),
    (InvalidTransition, status.HTTP_409_CONFLICT),
    (InvalidTokenRequest, status.HTTP_400_BAD_REQUEST),
]

# DRF exception class -> our error code (the rest use DRF's default_code).
_DRF_CODES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.ValidationError: "invalid_request",
    drf_exceptions.ParseError: "invalid_request",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "invalid_credentials",
    drf_exceptions.PermissionDenied: "forbidden",
}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """DRF's nested validation detail as readable ``field: message`` lines."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            lines.extend(_flatten(value, "" if key == "non_field_errors" else name))
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def _drf_response(exc: drf_exceptions.APIException) -> Response:
    code = next((c for klass, c in _DRF_CODES.items() if isinstance(exc, klass)), exc.default_code)
    headers: dict[str, str] = {}
    if isinstance(exc, drf_exceptions.Throttled):
        # DRF sets ``wait`` in Throttled.__init__; its stubs leave the attribute out.
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait or 1)))  # type: ignore[attr-defined]
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    if isinstance(exc, drf_exceptions.ValidationError):
        body = error_body(code, " ".join(_flatten(exc.detail)) or "Invalid request.", fields=exc.detail)
    else:
        body = error_body(code, " ".join(_flatten(exc.detail)))
    return Response(body, status=exc.status_code, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: one JSON shape for every error the API can return."""
    set_rollback()
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        return Response(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body("body_too_large", f"The request body is over the API's limit of {limit} bytes."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("forbidden", str(exc) or "Forbidden."), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, GatehouseError):
        code = next((s for klass, s in _DOMAIN_STATUS if isinstance(exc, klass)), status.HTTP_400_BAD_REQUEST)
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if code == status.HTTP_401_UNAUTHORIZED else {}
        return Response(error_body(exc.code, exc.detail), status=code, headers=headers)
    if isinstance(exc, drf_exceptions.APIException):
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            # As APIView.handle_exception does: an attribute DRF adds at run time, not in the stubs.
            exc.auth_header = getattr(exc, "auth_header", None) or WWW_AUTHENTICATE  # type: ignore[union-attr]
        return _drf_response(exc)
    if database.is_unavailable(exc):
        logger.warning("API request failed: the database is unavailable (%s)", type(exc).__name__)
        return Response(
            error_body(database.ERROR_CODE, database.DETAIL),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(database.RETRY_AFTER_SECONDS)},
        )
    view = context.get("view")
    logger.error("API error in %s", type(view).__name__ if view else "?", exc_info=exc)
    return Response(
        error_body("server_error", "Internal error; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )

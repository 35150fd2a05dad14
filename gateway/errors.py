"""Gateway refusals and the one place they become HTTP responses.

Every refusal is a ``GatewayError`` with a status, a stable ``code`` and a ``detail`` for humans;
``http_error`` renders it as ``{"error": code, "detail": detail}`` (plus ``WWW-Authenticate`` or
``Retry-After`` where the status calls for it). ``JsonRpcRefusal`` is for places where an MCP
client expects a JSON-RPC error object instead (malformed bodies, refused tool calls).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from audit import events

Headers = list[tuple[bytes, bytes]]


class GatewayError(Exception):
    status = 500
    code = "error"
    audit_event = events.AUTH_DENIED

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code

    def extra_headers(self) -> Headers:
        return []


def resource_metadata_url() -> str:
    return f"{settings.PUBLIC_URL}/.well-known/oauth-protected-resource"


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_token"

    def __init__(self, detail: str = "", *, presented: bool) -> None:
        if not presented:
            # Worded so the secret masker leaves it whole in the audit row and the log line.
            detail = detail or (
                "A Gatehouse token is required: send it as a Bearer token in the Authorization header, "
                "in the X-API-Key header or in the key query parameter."
            )
        super().__init__(detail)
        self.presented = presented
        if not presented:
            self.code = "missing_token"

    def extra_headers(self) -> Headers:
        challenge = f'Bearer resource_metadata="{resource_metadata_url()}"'
        if self.presented:
            challenge += ', error="invalid_token"'
        return [(b"www-authenticate", challenge.encode())]


class InsufficientScope(GatewayError):
    status = 403
    code = "insufficient_scope"

    def extra_headers(self) -> Headers:
        challenge = f'Bearer error="insufficient_scope", resource_metadata="{resource_metadata_url()}"'
        return [(b"www-authenticate", challenge.encode())]


class OriginNotAllowed(GatewayError):
    status = 403
    code = "origin_not_allowed"


class UnknownServer(GatewayError):
    status = 404
    code = "unknown_server"


class NoSuchPath(GatewayError):
    status = 404
    code = "not_found"
    audit_event = events.MCP_REQUEST


class SessionNotFound(GatewayError):
    status = 404
    code = "session_not_found"
    audit_event = events.SESSION_MISMATCH


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, detail: str = "", *, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow

    def extra_headers(self) -> Headers:
        return [(b"allow", self.allow.encode())]


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"

    def __init__(self, detail: str = "", *, code: str = "invalid_request") -> None:
        super().__init__(detail)
        self.code = code


class BodyTooLarge(GatewayError):
    status = 413
    code = "body_too_large"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str = "", *, retry_after: int, first_in_window: bool) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)
        # Only the first refusal of a window is audited, so a flood cannot flood the audit log.
        self.first_in_window = first_in_window

    def extra_headers(self) -> Headers:
        return [(b"retry-after", str(self.retry_after).encode())]


class UpstreamUnavailable(GatewayError):
    status = 502
    code = "upstream_unavailable"
    audit_event = events.MCP_REQUEST


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"
    audit_event = events.MCP_REQUEST


class InternalError(GatewayError):
    """A fault of the gateway itself: logged with its traceback, answered without it."""

    status = 500
    code = "internal_error"
    audit_event = events.MCP_REQUEST


@dataclass
class JsonRpcRefusal(Exception):
    """A refusal the client receives as a JSON-RPC error object (or a batch of them)."""

    status: int
    code: int
    message: str
    request_ids: list[Any]
    reason: str
    audit_event: str = events.AUTH_DENIED
    tool: str = ""
    data: dict[str, Any] | None = None

    def body(self) -> bytes:
        errors = [self._error(request_id) for request_id in (self.request_ids or [None])]
        return json.dumps(errors[0] if len(errors) == 1 else errors, separators=(",", ":")).encode()

    def _error(self, request_id: Any) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": request_id, "error": error}


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def http_error(exc: GatewayError) -> tuple[int, Headers, bytes]:
    """Status, headers and body for a refusal: the gateway never answers with an HTML page."""
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        *exc.extra_headers(),
    ]
    return exc.status, headers, json_body({"error": exc.code, "detail": exc.detail})


def jsonrpc_error(exc: JsonRpcRefusal) -> tuple[int, Headers, bytes]:
    headers: Headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    return exc.status, headers, exc.body()

"""Gateway refusals and the one place they become HTTP responses.

Every refusal is a ``Refusal``: a status, a stable ``code``, a ``detail`` for humans, the headers
its status calls for (``WWW-Authenticate``, ``Retry-After``, ``Allow``), how it is audited
(``audit_event``, ``reason``, ``audit``) and, once admission has learned them, the token and server
it concerns. The subclasses below only name the common kinds and fill in those fields.

A refusal an MCP client must read as a JSON-RPC error object (malformed bodies, refused tool
calls) is the same type with ``rpc_code`` set (and ``request_ids``, ``data``). ``render`` is the
only place either form becomes bytes: ``{"error": code, "detail": detail}``, or the JSON-RPC
error object (a batch of them when several requests are answered).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from audit import events
from core import database

if TYPE_CHECKING:
    from tokens.services import AuthenticatedToken

Headers = list[tuple[bytes, bytes]]


class Refusal(Exception):
    """A request the gateway answers itself instead of forwarding it."""

    status: int = 500
    code: str = "error"
    audit_event: str = events.AUTH_DENIED

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
        audit_event: str | None = None,
        audit: bool = True,
        headers: Sequence[tuple[bytes, bytes]] = (),
        tool: str | None = None,
        rpc_code: int | None = None,
        request_ids: Sequence[Any] = (),
        data: dict[str, Any] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if audit_event is not None:
            self.audit_event = audit_event
        self.detail = detail or self.code
        super().__init__(self.detail)
        # The audit row's ``reason``: the code, unless the refusal knows a finer one.
        self.reason = reason or self.code
        # False for refusals not worth a row (the second and later 429 of a rate window).
        self.audit = audit
        self.headers: Headers = list(headers)
        # The tool the refusal is about; None means the tool the request body names.
        self.tool = tool
        self.rpc_code = rpc_code
        self.request_ids: list[Any] = list(request_ids)
        self.data = data
        # What admission had learned when it refused: the audit row names them.
        self.token: AuthenticatedToken | None = None
        self.server = ""

    @property
    def is_jsonrpc(self) -> bool:
        return self.rpc_code is not None

    def with_subject(self, *, token: AuthenticatedToken | None, server: str) -> Refusal:
        """This refusal, naming the token and server it concerns (for re-raising)."""
        self.token = token
        self.server = server
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, detail={self.detail!r})"


def resource_metadata_url(resource_path: str = "") -> str:
    """The RFC 9728 document of the gateway, or of one server's endpoint (``/mcp/demo/``): OAuth
    clients read the one the challenge names first, and ask for a token for its resource."""
    return f"{settings.PUBLIC_URL}/.well-known/oauth-protected-resource{resource_path.rstrip('/')}" + (
        "/" if resource_path else ""
    )


def bearer_challenge(resource_path: str, **params: str) -> list[tuple[bytes, bytes]]:
    """The RFC 6750 ``WWW-Authenticate`` header: the resource metadata of the endpoint called
    (RFC 9728), then the given parameters (empty ones left out)."""
    parts = [f'resource_metadata="{resource_metadata_url(resource_path)}"']
    parts += [f'{name}="{value}"' for name, value in params.items() if value]
    return [(b"www-authenticate", ("Bearer " + ", ".join(parts)).encode())]


class Unauthorized(Refusal):
    status = 401
    code = "invalid_token"

    def __init__(self, detail: str = "", *, presented: bool) -> None:
        self.presented = presented
        if not presented:
            # Worded so the secret masker leaves it whole in the audit row and the log line.
            detail = detail or (
                "A Gatehouse token is required: send it as a Bearer token in the Authorization header, "
                "in the X-API-Key header or in the key query parameter."
            )
        super().__init__(detail, code="invalid_token" if presented else "missing_token")
        self.at("")

    def at(self, resource_path: str) -> Unauthorized:
        """Name the resource metadata of the endpoint the client called (``/mcp/demo/``)."""
        self.headers = bearer_challenge(resource_path, error="invalid_token" if self.presented else "")
        return self


class InsufficientScope(Refusal):
    """403 with the RFC 6750 challenge; ``scope`` (``mcp:SERVER:TOOL``) tells an OAuth client
    what to ask its user for (step-up authorization)."""

    status = 403
    code = "insufficient_scope"

    def __init__(self, detail: str = "", *, scope: str = "", resource_path: str = "", **kwargs: Any) -> None:
        headers = bearer_challenge(resource_path, error="insufficient_scope", scope=scope)
        super().__init__(detail, headers=headers, **kwargs)


class OriginNotAllowed(Refusal):
    status = 403
    code = "origin_not_allowed"


class UnknownServer(Refusal):
    status = 404
    code = "unknown_server"


class NoSuchPath(Refusal):
    status = 404
    code = "not_found"
    audit_event = events.MCP_REQUEST


class SessionNotFound(Refusal):
    """Unknown, ended, foreign-token and other-server sessions: one answer, the audit knows which."""

    status = 404
    code = "session_not_found"
    audit_event = events.SESSION_MISMATCH

    def __init__(self, detail: str = "", *, reason: str | None = None) -> None:
        super().__init__(detail, reason=reason)


class MethodNotAllowed(Refusal):
    status = 405
    code = "method_not_allowed"

    def __init__(self, detail: str = "", *, allow: str) -> None:
        super().__init__(detail, headers=[(b"allow", allow.encode())])
        self.allow = allow


class BadRequest(Refusal):
    status = 400
    code = "invalid_request"

    def __init__(self, detail: str = "", *, code: str = "invalid_request") -> None:
        super().__init__(detail, code=code)


class BodyTooLarge(Refusal):
    status = 413
    code = "body_too_large"


class RateLimited(Refusal):
    status = 429
    code = "rate_limited"

    def __init__(
        self, detail: str = "", *, retry_after: int, first_in_window: bool, bucket: str = ""
    ) -> None:
        self.retry_after = max(1, retry_after)
        self.bucket = bucket  # which limit: "ip" or "token"
        # Only the first refusal of a window is audited, so a flood cannot flood the audit log.
        self.first_in_window = first_in_window
        super().__init__(
            detail, audit=first_in_window, headers=[(b"retry-after", str(self.retry_after).encode())]
        )


class UpstreamUnavailable(Refusal):
    status = 502
    code = "upstream_unavailable"
    audit_event = events.MCP_REQUEST


class UpstreamTimeout(Refusal):
    status = 504
    code = "upstream_timeout"
    audit_event = events.MCP_REQUEST


class UpstreamStalled(UpstreamTimeout):
    """An upstream event stream that went quiet: no complete event within the configured bound.

    ``reason`` says which bound: ``upstream_first_event_timeout`` (an answer to a POST that never
    started) or ``upstream_stream_idle`` (silence after that, or on a GET stream).
    """

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, reason=reason)


class DatabaseUnavailable(Refusal):
    """The gateway cannot reach its database, so it cannot check the token: 503, try again shortly."""

    status = 503
    code = database.ERROR_CODE
    audit_event = events.MCP_REQUEST

    def __init__(self, detail: str = database.DETAIL) -> None:
        super().__init__(
            detail, headers=[(b"retry-after", str(database.RETRY_AFTER_SECONDS).encode())]
        )


class InternalError(Refusal):
    """A fault of the gateway itself: logged with its traceback, answered without it."""

    status = 500
    code = "internal_error"
    audit_event = events.MCP_REQUEST


# The JSON-RPC error code of a request to a server that takes each caller's own credential, from a
# caller who has none that works (implementation-defined server error range).
ACCOUNT_NOT_CONNECTED_RPC_CODE = -32002
# The MCP spec's "URL elicitation required" error: a client of a revision that knows it (URL-mode
# elicitation) offers the person the URL in data.elicitations, instead of only showing the text.
URL_ELICITATION_REQUIRED_RPC_CODE = -32042


class AccountNotConnected(Refusal):
    """The caller has no working connected account for the server: a JSON-RPC error naming the
    server and the caller's connect page, so an MCP client shows the person where to go. Never
    an anonymous request upstream. ``answering`` names the requests once the body is read."""

    status = 403
    code = "account_not_connected"

    def __init__(self, *, server: str, connect_url: str, broken: bool = False) -> None:
        detail = (
            f"Connect your account for the server {server!r} again (its provider refused to renew "
            f"it), at {connect_url}" if broken else
            f"Connect your account for the server {server!r} first, at {connect_url}"
        )
        super().__init__(
            detail, rpc_code=ACCOUNT_NOT_CONNECTED_RPC_CODE, reason="account_broken" if broken else None,
            data={"error": self.code, "server": server, "connect_url": connect_url},
        )

    def answering(self, request_ids: Sequence[Any], *, url_elicitation: bool = False) -> AccountNotConnected:
        """Answer these JSON-RPC requests (200, as MCP expects); none: an HTTP error (403).

        ``url_elicitation``: the client speaks a revision with URL-mode elicitation, so the answer
        is that form of the error (-32042, the connect page in ``data.elicitations``); the
        fields the older form carries stay beside it."""
        self.request_ids = list(request_ids)
        self.status = 200 if self.request_ids else 403
        if url_elicitation and self.request_ids and self.data is not None:
            self.rpc_code = URL_ELICITATION_REQUIRED_RPC_CODE
            self.data = {**self.data, "elicitations": [{
                "mode": "url", "elicitationId": secrets.token_urlsafe(16),
                "url": self.data["connect_url"], "message": self.detail,
            }]}
        return self


# An upstream's answer that the gateway would not relay (``gateway.upstream.answers``).
class UpstreamRejected(Refusal):
    status = 502
    code = "upstream_rejected"


def json_body(payload: dict[str, Any] | list[Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def jsonrpc_body(refusal: Refusal) -> bytes:
    """The JSON-RPC error object(s) of a refusal: one per request it answers (one with a null id if none)."""
    error: dict[str, Any] = {"code": refusal.rpc_code, "message": refusal.detail}
    if refusal.data is not None:
        error["data"] = refusal.data
    errors = [
        {"jsonrpc": "2.0", "id": request_id, "error": error} for request_id in refusal.request_ids or [None]
    ]
    return json_body(errors[0] if len(errors) == 1 else errors)


# The JSON-RPC error code of the error a pending request gets when the gateway ends its stream
# (implementation-defined server error range); a timeout uses the SDKs' request-timeout code.
STREAM_ENDED_RPC_CODE = -32000
STREAM_TIMEOUT_RPC_CODE = -32001


def stream_end_errors(request_ids: Sequence[Any], *, message: str, reason: str, code: int) -> bytes:
    """One SSE ``message`` event per request id, carrying a JSON-RPC error that says why."""
    out = []
    for request_id in request_ids:
        payload = json_body({
            "jsonrpc": "2.0", "id": request_id,
            "error": {"code": code, "message": message, "data": {"reason": reason}},
        })
        out.append(b"event: message\ndata: " + payload + b"\n\n")
    return b"".join(out)


def render(refusal: Refusal) -> tuple[int, Headers, bytes]:
    """Status, headers and body for a refusal: the gateway never answers with an HTML page."""
    headers: Headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    if refusal.is_jsonrpc:
        return refusal.status, headers, jsonrpc_body(refusal)
    headers.extend(refusal.headers)
    return refusal.status, headers, json_body({"error": refusal.code, "detail": refusal.detail})

"""What an upstream answered, judged before it is relayed: its status, its error bodies, bounded reads.

An upstream that refuses the gateway's credentials or redirects is never relayed as it is; an error
status is relayed only when its body is a well-formed JSON-RPC error (anything else may carry the
upstream's internals: the client gets the gateway's JSON error, the log a short masked excerpt).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from core.secrets_mask import mask_free_text
from gateway.mcp import policy, tool_pins
from gateway.pipeline.context import Context
from gateway.request.refusals import UpstreamRejected, UpstreamUnavailable, json_body
from gateway.request.responder import Responder
from gateway.upstream.hop import response_headers

logger = logging.getLogger("gatehouse.gateway")

# An upstream error answer is read this far: JSON-RPC errors are small.
ERROR_BODY_LIMIT = 64 * 1024


# What of an error body that is not relayed goes to the log (masked).
LOG_EXCERPT_BYTES = 500


async def relay_error(
    ctx: Context, upstream: httpx.Response, responder: Responder, *, session_id: str | None
) -> None:
    """Relay an upstream error status: a JSON-RPC error body as it is, anything else replaced.

    A well-formed JSON-RPC error (an object, or an array of responses with an error) is the
    upstream's answer to the client and passes (status included). Anything else (an HTML page,
    a traceback, a framework's debug output) may carry the upstream's internals or secrets: the
    client gets the gateway's JSON error (502 for a 5xx; a 4xx keeps its status, so a 405 still
    says "no GET stream here" and a 404 inside a session still says "start a new session"), and
    a short masked excerpt goes to the log.
    """
    status = upstream.status_code
    body, complete = await _read_prefix(upstream, limit=ERROR_BODY_LIMIT)
    headers = response_headers(upstream, session_id=session_id)
    if complete and is_jsonrpc_error_body(body):
        filtered = await filter_tools_answer(ctx, body)
        await responder.start(status, headers)
        await responder.finish(filtered if filtered is not None else body)
        return
    server = ctx.admission.server.name if ctx.admission else ""
    excerpt = body[:LOG_EXCERPT_BYTES].decode("utf-8", "replace")
    logger.warning(
        "upstream error answer replaced",
        extra={"server": server, "upstream_status": status, "excerpt": mask_free_text(excerpt)},
    )
    ctx.notes.upstream_status = status
    binding = ctx.admission.binding if ctx.admission else None
    if status == 404 and binding is not None:
        code = "session_not_found"
        detail = "The upstream server no longer knows this session; start a new one."
    elif status >= 500:
        code, detail = "upstream_error", f"The upstream server failed (HTTP {status})."
        status = 502
    else:
        code, detail = "upstream_error", f"The upstream server refused the request (HTTP {status})."
    ctx.notes.upstream_error = code
    own = [(k, v) for k, v in headers if k != b"content-type"]
    await responder.whole(
        status, [(b"content-type", b"application/json"), *own], json_body({"error": code, "detail": detail})
    )


async def filter_tools_answer(ctx: Context, body: bytes) -> bytes | None:
    """A whole JSON answer with a ``tools/list`` result cut to the token's allowlist and pins
    (``None``: nothing to cut); an answer that cannot be checked is refused as unavailable."""
    assert ctx.admission is not None
    allowed = ctx.admission.token.scope.servers.get(ctx.admission.server.name)
    pins = tool_pins.PinFilter(ctx.admission.server)
    try:
        filtered = policy.filter_tools_payload(body, allowed, pins)
    except policy.UncheckableAnswer as exc:
        raise UpstreamUnavailable(str(exc)) from exc
    await pins.flush()
    return filtered


def is_jsonrpc_error_body(body: bytes) -> bool:
    """A JSON-RPC error response, or a non-empty array of responses at least one of which is an error."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    messages = payload if isinstance(payload, list) else [payload]
    return bool(messages) and all(_is_response(m) for m in messages) and any(
        isinstance(m.get("error"), dict) for m in messages
    )


def _is_response(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "id" not in message:
        return False
    error = message.get("error")
    if error is None:
        return "result" in message
    return isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(
        error.get("message"), str
    )


async def _read_prefix(upstream: httpx.Response, *, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of an upstream body, and whether that is all of it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in upstream.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


async def read_bounded(upstream: httpx.Response, *, limit: int) -> bytes:
    """A whole upstream answer that must be read before relaying it, no larger than one SSE event may be."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in upstream.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UpstreamUnavailable(f"The upstream's answer is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def check_upstream_status(upstream: httpx.Response) -> None:
    """Refuse to relay the upstream refusing our credentials, or a redirect."""
    if upstream.status_code in (401, 403, 407):
        raise UpstreamRejected(
            f"The upstream server refused the gateway's credentials ({upstream.status_code}); "
            "check the server's configured headers."
        )
    if upstream.is_redirect:
        # Never relayed: the client would follow it with its Gatehouse token to wherever the
        # upstream points, and the Location would reveal the upstream's address.
        raise UpstreamUnavailable(
            f"The upstream answered with a redirect ({upstream.status_code}); the gateway does not "
            "follow redirects, so register the server's final URL."
        )

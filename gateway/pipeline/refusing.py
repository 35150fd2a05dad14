"""Refusals on their way out: audited off the hot path (``record_later``), then answered.

The audit row of a refusal keeps what the client was told (``reason``, ``detail``) and how it
asked (``method``, ``path``, the credential's source, the JSON-RPC method), never the credential.
A 429 past the first of its window is answered but not audited (``Refusal.audit``).
"""

from __future__ import annotations

from typing import Any

from audit.services import record_later
from gateway.mcp.protocol import MalformedMessage
from gateway.pipeline.context import Context
from gateway.request import request_metrics
from gateway.request.refusals import (
    STREAM_ENDED_RPC_CODE,
    STREAM_TIMEOUT_RPC_CODE,
    Refusal,
    UpstreamTimeout,
    render,
    stream_end_errors,
)
from gateway.request.responder import Responder


def malformed(exc: MalformedMessage) -> Refusal:
    """A body the gateway cannot authorize, refused as the JSON-RPC error MCP clients expect."""
    return Refusal(
        exc.message, status=400, code="malformed_message", tool="", rpc_code=exc.code,
        request_ids=[exc.request_id],
    )


def audit_refusal(ctx: Context, refusal: Refusal) -> None:
    ctx.refused = refusal
    request_metrics.refused(reason=refusal.reason, server=ctx.admission.server.name if ctx.admission else "",
                    tool=ctx.tool[:200], status=refusal.status)
    if not refusal.audit:
        return
    detail: dict[str, Any] = {
        "reason": refusal.reason,
        "detail": refusal.detail,
        "method": ctx.incoming.method,
        "path": ctx.incoming.path,
    }
    if ctx.credential is not None:
        detail["credential_source"] = ctx.credential.source
    if ctx.rpc is not None:
        detail["rpc_method"] = ctx.rpc_method
    tool = refusal.tool if refusal.tool is not None else ctx.tool
    record_later(
        event=refusal.audit_event,
        tool=tool[:200],
        outcome="error" if refusal.status >= 500 else "denied",
        status=refusal.status,
        latency_ms=ctx.incoming.elapsed_ms(),
        detail=detail,
        **ctx.subject(refusal).fields(),
    )


async def end_stream(
    ctx: Context, responder: Responder, *, message: str, reason: str, code: int = STREAM_ENDED_RPC_CODE
) -> None:
    """End a response already under way; an event stream first tells each pending request why.

    Pending: the JSON-RPC requests of this request body whose responses were not relayed yet.
    Each gets one ``message`` event with a JSON-RPC error, so a client can tell a revoked token
    or a dead upstream from a stream that merely ended.
    """
    if responder.is_event_stream and not responder.finished:
        pending = ctx.pending_request_ids()
        if pending:
            ctx.notes.pending_errored = len(pending)
            await responder.body(stream_end_errors(pending, message=message, reason=reason, code=code))
    await responder.finish()


async def refuse(ctx: Context, responder: Responder, refusal: Refusal) -> None:
    """Audit ``refusal`` and answer it; a response already under way ends (see ``end_stream``)."""
    audit_refusal(ctx, refusal)
    if responder.started:
        code = STREAM_TIMEOUT_RPC_CODE if isinstance(refusal, UpstreamTimeout) else STREAM_ENDED_RPC_CODE
        await end_stream(ctx, responder, message=refusal.detail, reason=refusal.reason, code=code)
        return
    await responder.whole(*render(refusal))

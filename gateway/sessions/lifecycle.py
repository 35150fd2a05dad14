"""The session steps every flow shares: start a session, end one the client ended, end one the
upstream forgot."""

from __future__ import annotations

import httpx

from gateway.admission import bindings
from gateway.admission.db_pool import run_db
from gateway.models import SessionBinding
from gateway.pipeline.context import Context
from gateway.services import end_session


async def start_session(ctx: Context, *, upstream_session_id: str, protocol_version: str) -> bindings.Binding:
    """Bind a new upstream session to the admitted token under the gateway's own session id."""
    assert ctx.admission is not None
    server = ctx.admission.server
    binding = await run_db(
        bindings.create_binding,
        token=ctx.admission.token,
        server_id=server.id,
        server_name=server.name,
        upstream_session_id=upstream_session_id,
        protocol_version=protocol_version,
        transport=server.transport.name,
        client_ip=ctx.incoming.client_ip,
        user_agent=ctx.incoming.user_agent,
    )
    ctx.session_id = binding.id
    return binding


async def close_session(ctx: Context, *, session_id: str, reason: str) -> None:
    """End a session the client ended (a DELETE, a closed legacy stream); nothing to tell upstream."""
    assert ctx.admission is not None
    await run_db(
        end_session, session_id=session_id, status=SessionBinding.Status.CLOSED,
        reason=reason, actor=ctx.admission.token.display_prefix, notify_upstream=False,
    )


async def end_if_upstream_forgot(ctx: Context, upstream: httpx.Response) -> None:
    """An upstream 404 inside a session means it forgot the session (restart, its own expiry): end ours.

    If the session had already ended, the request was admitted on a cached binding inside the
    change feed's window (another instance ended it less than a poll ago, and that instance's
    DELETE made the upstream forget it): the client gets the gateway's ``session_not_found``, the
    same answer the next request would get, not the upstream's own 404.
    """
    binding = ctx.admission.binding if ctx.admission else None
    if binding is None or upstream.status_code != 404 or ctx.incoming.method == "DELETE":
        return
    ended_now = await run_db(
        end_session, session_id=binding.id, status=SessionBinding.Status.EXPIRED,
        reason="upstream no longer knows the session", actor="system:gateway", notify_upstream=False,
    )
    if not ended_now:
        raise bindings.session_not_found("ended")

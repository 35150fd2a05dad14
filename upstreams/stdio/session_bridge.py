"""One MCP session of the stdio runner, bridged to its server's process: what the process sends
is queued for the session's SDK transport (never blocking the process), and what the client
sends goes to a ready process or is answered with a JSON-RPC error."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import INTERNAL_ERROR, ErrorData, JSONRPCError, JSONRPCMessage, JSONRPCRequest, RequestId

from upstreams.stdio.child import ChildGone
from upstreams.stdio.supervisor import NotRunning, Supervisor

logger = logging.getLogger("gatehouse.stdio")

# How long a request waits for a (re)starting process before it is answered with an error.
READY_WAIT_SECONDS = 15.0
# Messages queued for one session before it counts as stuck and is ended (never blocks the
# process, which other sessions may share).
SESSION_QUEUE = 1000
# A session whose initialize failed is ended this long after the error was queued for it.
INITIALIZE_FAILED_GRACE_SECONDS = 1.0


class SessionFrontend:
    """A session's side of the bridge: what its process sends is queued here, never blocking it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.send, self.receive = anyio.create_memory_object_stream[SessionMessage](SESSION_QUEUE)

    def deliver(self, message: JSONRPCMessage, related: RequestId | None) -> None:
        try:
            metadata = ServerMessageMetadata(related_request_id=related)
            self.send.send_nowait(SessionMessage(message, metadata=metadata))
        except anyio.WouldBlock:
            logger.warning("stdio session stuck: ended", extra={"server": self.session.server})
            self.session.end()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass


@dataclass(eq=False)
class Session:
    id: str
    server: str
    transport: StreamableHTTPServerTransport
    supervisor: Supervisor
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    frontend: SessionFrontend | None = None

    def end(self) -> None:
        self.scope.cancel()


async def to_process(session: Session, frontend: SessionFrontend, message: JSONRPCMessage) -> None:
    try:
        child = await session.supervisor.ready_child(timeout=READY_WAIT_SECONDS)
        await child.send(frontend, message)
    except (NotRunning, ChildGone) as exc:
        if not isinstance(message, JSONRPCRequest):
            return
        detail = str(exc) if isinstance(exc, NotRunning) else f"The stdio server {session.server!r} exited."
        frontend.deliver(
            JSONRPCError(jsonrpc="2.0", id=message.id, error=ErrorData(code=INTERNAL_ERROR, message=detail)),
            message.id,
        )
        if message.method == "initialize":
            # Nothing was established: end the session (and, isolated, its process slot, which
            # would otherwise count against max_processes) once the error is on its way.
            await anyio.sleep(INITIALIZE_FAILED_GRACE_SECONDS)
            session.end()


async def pump(frontend: SessionFrontend, write: Any) -> None:
    with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        async with frontend.receive:
            async for message in frontend.receive:
                await write.send(message)

"""The stdio runner: hosts every enabled stdio server and serves each as Streamable HTTP.

One process (``manage.py stdio_runner``). Its loop follows the configuration in the database
every ``POLL_SECONDS``: a new server is started, a changed one (command, environment, cwd,
isolation, cap) is restarted, a disabled or deleted one is stopped; and it writes each server's
state (``StdioStatus``) for the console and ``/ready``.

Its HTTP side is an ASGI app for the gateway only:

- every request must carry ``X-Gatehouse-Runner-Key`` (compared in constant time), else 401;
- ``/servers/<name>/mcp``: Streamable HTTP, served per MCP session by the SDK's own
  ``StreamableHTTPServerTransport`` (SSE answers, the GET stream, DELETE), bridged to the
  server's process (``child``). A session starts with ``initialize`` (at ``max_processes`` a
  ``session``-isolated server answers 503 with a JSON-RPC error) and ends with a DELETE, its
  idle timeout, or the runner stopping; with ``session`` isolation its process ends with it.
- Requests of the 2026 stateless protocol revision are answered with the "unsupported protocol
  version" error listing the handshake versions, which makes SDK clients use ``initialize``.
- ``/health``: 200 without the key (a liveness probe learns nothing from it).

Stopping the runner (SIGTERM, SIGINT) stops every process it started before it exits.
"""

from __future__ import annotations

import hmac
import logging
import re
import signal
import time
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager, suppress
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from django.db import close_old_connections
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from upstreams import selectors, services
from upstreams.stdio.command import RUNNER_KEY_HEADER, StdioCommand
from upstreams.stdio.report import ServerStatus
from upstreams.stdio.runner_http import (
    Receive,
    Scope,
    Send,
    is_initialize,
    json_response,
    parsed,
    read_body,
    replay,
    request_id_of,
    rpc_error,
)
from upstreams.stdio.session_bridge import Session, SessionFrontend, pump, to_process
from upstreams.stdio.supervisor import AtCapacity, HostedServer, NotRunning

logger = logging.getLogger("gatehouse.stdio")


POLL_SECONDS = 2.0
# An unchanged state is rewritten this often (``StdioStatus`` rows older than 10 s read as "not
# reported").
HEARTBEAT_SECONDS = 4.0
# A session nobody used for this long is ended (its process too): the gateway's own sweep
# normally DELETEs it long before.
SESSION_IDLE_SECONDS = 3600.0
MAX_BODY_BYTES = 8 * 1024 * 1024
# Open HTTP requests get this long to finish once the runner stops.
SHUTDOWN_GRACE_SECONDS = 5

_PATH_RE = re.compile(r"^/servers/(?P<name>[a-z0-9][a-z0-9_-]{0,63})/mcp/?$")
_KEY_HEADER = RUNNER_KEY_HEADER.lower().encode()


class Runner:
    def __init__(self, *, key: str) -> None:
        self._key = key.encode()
        self.hosted: dict[str, HostedServer] = {}
        self.sessions: dict[str, Session] = {}
        self._tg: TaskGroup | None = None
        self._stopping = False
        # What each server's row last said and when it was written: unchanged rows are only
        # rewritten as a heartbeat, so an idle runner costs the database one read per poll.
        self._written: dict[str, tuple[ServerStatus, float]] = {}
        self._database_down = False

    # --- the loop: follow the configuration, report states ------------------------------------

    async def run(self, task_group: TaskGroup) -> None:
        self._tg = task_group
        while not self._stopping:
            try:
                commands, broken = await anyio.to_thread.run_sync(_read_configuration)
                if self._stopping:
                    return
                await self._apply(commands)
                await anyio.to_thread.run_sync(_report, self._due_reports(), broken)
            except Exception:  # the database is down: keep serving what runs, try again
                if not self._database_down:
                    logger.exception("stdio runner cannot reach the database; processes keep running")
                self._database_down = True
            else:
                if self._database_down:
                    logger.warning("stdio runner reaches the database again")
                self._database_down = False
            await anyio.sleep(POLL_SECONDS)

    def _due_reports(self) -> list[ServerStatus]:
        """The states that changed, and the unchanged ones whose heartbeat is due."""
        now = time.monotonic()
        due = []
        for hosted in self.hosted.values():
            status = hosted.status()
            written = self._written.get(status.server)
            if written is None or written[0] != status or now - written[1] >= HEARTBEAT_SECONDS:
                due.append(status)
                self._written[status.server] = (status, now)
        return due

    async def _apply(self, commands: dict[str, StdioCommand]) -> None:
        assert self._tg is not None
        for name in list(self.hosted):
            wanted = commands.get(name)
            if wanted is None or wanted.fingerprint != self.hosted[name].command.fingerprint:
                logger.info("stdio server stopped (disabled, removed or changed)", extra={"server": name})
                await self._stop_server(name)
        for name, command in commands.items():
            if name not in self.hosted:
                self.hosted[name] = HostedServer(command, self._tg)
                logger.info("stdio server hosted", extra={"server": name, "isolation": command.isolation})

    async def _stop_server(self, name: str) -> None:
        hosted = self.hosted.pop(name, None)
        if hosted is None:  # a signal's stop and a configuration change met
            return
        for session in [s for s in self.sessions.values() if s.server == name]:
            session.end()
        await hosted.stop()

    async def stop(self) -> None:
        self._stopping = True
        for name in list(self.hosted):
            await self._stop_server(name)

    # --- HTTP ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await json_response(send, 200, {"status": "ok"})
            return
        match = _PATH_RE.match(path)
        if match is None:
            await json_response(send, 404, {"error": "not_found", "detail": "Use /servers/<name>/mcp."})
            return
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(_KEY_HEADER, b""), self._key):
            detail = f"The stdio runner wants {RUNNER_KEY_HEADER}."
            await json_response(send, 401, {"error": "unauthorized", "detail": detail})
            return
        name = match["name"]
        hosted = self.hosted.get(name)
        if hosted is None:
            await rpc_error(send, 404, None, INVALID_REQUEST, f"No stdio server named {name!r} runs here.")
            return
        version = headers.get(b"mcp-protocol-version", b"").decode("latin-1")
        session_id = headers.get(b"mcp-session-id", b"").decode("latin-1")
        if version and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            body = await read_body(receive, limit=MAX_BODY_BYTES)
            await rpc_error(
                send, 400, request_id_of(parsed(body)), UNSUPPORTED_PROTOCOL_VERSION,
                "This server speaks the initialize handshake.",
                data={"supported": list(HANDSHAKE_PROTOCOL_VERSIONS), "requested": version},
            )
        elif session_id:
            await self._existing_session(name, session_id, scope, receive, send)
        elif scope["method"] == "POST":
            await self._new_session(name, hosted, scope, receive, send)
        else:
            await rpc_error(send, 400, None, INVALID_REQUEST, "Bad Request: Missing session ID.")

    async def _existing_session(
        self, name: str, session_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.server != name:
            await rpc_error(send, 404, None, INVALID_REQUEST, "Session not found.")
            return
        await session.transport.handle_request(scope, receive, send)
        if session.transport.is_terminated:
            session.end()

    async def _new_session(
        self, name: str, hosted: HostedServer, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await read_body(receive, limit=MAX_BODY_BYTES)
        payload = parsed(body)
        request_id = request_id_of(payload)
        if not is_initialize(payload):
            await rpc_error(send, 400, request_id, INVALID_REQUEST, "Bad Request: Missing session ID.")
            return
        headers = dict(scope["headers"])
        accept = headers.get(b"accept", b"").decode("latin-1")
        if not headers.get(b"content-type", b"").startswith(b"application/json") or not all(
            kind in accept for kind in ("application/json", "text/event-stream")
        ):
            # Refused here, before a process slot is taken (the SDK transport would refuse it too,
            # but only after the session and its process exist).
            await rpc_error(send, 406, request_id, INVALID_REQUEST, "Send Content-Type: application/json "
                             "and Accept: application/json, text/event-stream.")
            return
        if self.hosted.get(name) is not hosted:  # disabled or changed while the body arrived
            await rpc_error(send, 404, request_id, INVALID_REQUEST, f"No stdio server {name!r} runs here.")
            return
        session_id = uuid.uuid4().hex
        try:
            supervisor = hosted.open(session_id)
        except (AtCapacity, NotRunning) as exc:
            await rpc_error(send, 503, request_id, INTERNAL_ERROR, str(exc))
            return
        transport = StreamableHTTPServerTransport(
            mcp_session_id=session_id, idle_timeout=SESSION_IDLE_SECONDS
        )
        session = Session(id=session_id, server=name, transport=transport, supervisor=supervisor)
        self.sessions[session_id] = session
        assert self._tg is not None
        await self._tg.start(self._serve_session, session, hosted)
        status: list[int] = []

        async def watched(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await transport.handle_request(scope, replay(body), watched)
        finally:
            if status[:1] != [200]:  # refused or failed: no session was established
                session.end()

    async def _serve_session(self, session: Session, hosted: HostedServer, *, task_status: Any) -> None:
        """Bridge one session's messages to its process until the session ends."""
        frontend = session.frontend = SessionFrontend(session)
        supervisor = session.supervisor
        supervisor.frontends.add(frontend)
        try:
            with session.scope:
                async with session.transport.connect() as (read, write), anyio.create_task_group() as tg:
                    task_status.started()
                    tg.start_soon(pump, frontend, write)
                    idle = session.transport.idle_scope or anyio.CancelScope()
                    # A DELETE (terminate) closes the read stream under the loop: the session's end.
                    with idle, suppress(anyio.ClosedResourceError, anyio.EndOfStream):
                        async for item in read:
                            if not isinstance(item, Exception):
                                await to_process(session, frontend, item.message)
                    tg.cancel_scope.cancel()
        except Exception:  # one session's failure must not take the runner (and every process) down
            logger.exception("stdio session failed", extra={"server": session.server})
        finally:
            with anyio.CancelScope(shield=True):
                supervisor.frontends.discard(frontend)
                if supervisor.child is not None:
                    await supervisor.child.forget(frontend)
                self.sessions.pop(session.id, None)
                with suppress(Exception):
                    await session.transport.terminate()
                await hosted.close(session.id)


def _read_configuration() -> tuple[dict[str, StdioCommand], dict[str, str]]:
    close_old_connections()
    return selectors.stdio_commands()


def _report(reports: list[ServerStatus], broken: dict[str, str]) -> None:
    close_old_connections()
    services.record_stdio_statuses(reports=reports, broken=broken)


# --- the process ------------------------------------------------------------------------------


async def serve(*, host: str, port: int, key: str) -> None:
    """Run the runner until SIGTERM or SIGINT; every process it started is stopped before it returns."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the runner handles signals itself, so its processes are stopped first

    # The SDK's stdio client logs a stdout line it cannot parse whole; the line may hold an
    # environment value. The runner logs the fact itself, without the line (``Child._pump``).
    logging.getLogger("mcp.client.stdio").setLevel(logging.CRITICAL)
    runner = Runner(key=key)
    server = _Server(uvicorn.Config(runner, host=host, port=port, lifespan="off", log_level="warning",
                                    access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS))

    async def _signals() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.info("stdio runner stopping", extra={"signal": signal.Signals(signum).name})
                # Processes first: that ends their sessions' open streams, so the HTTP server
                # has nothing left to wait for.
                with anyio.CancelScope(shield=True):
                    await runner.stop()
                server.should_exit = True
                return

    async def _announce() -> None:
        while not server.started:  # logged once the socket is bound, not before
            await anyio.sleep(0.05)
        logger.info("stdio runner listening", extra={"host": host, "port": port})

    async with anyio.create_task_group() as tg:
        tg.start_soon(_signals)
        tg.start_soon(runner.run, tg)
        tg.start_soon(_announce)
        await server.serve()
        with anyio.CancelScope(shield=True):
            await runner.stop()
        tg.cancel_scope.cancel()
    logger.info("stdio runner stopped")

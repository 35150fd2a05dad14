"""One stdio server process, and the routing of its messages to the HTTP sessions it serves.

The process is spawned with the official SDK's stdio client (``mcp.client.stdio``), which also
stops it (stdin closed, then SIGTERM, then SIGKILL of its whole process tree). The runner speaks
to it as one MCP client: it sends ``initialize`` once and answers every session's own
``initialize`` with the result it got, so a ``shared`` process serves many sessions.

Sessions sharing a process must never see each other's traffic, so a ``Child`` renumbers what
crosses it: each request gets a fresh integer id (the answer is routed back under the session's
own id), and a ``progressToken`` becomes ``gh-<that id>`` (progress goes back, under the
session's token, to the stream of the request it belongs to). A ``notifications/cancelled``
is translated the same way, and answers the cancelled request "cancelled" at once (a late reply
from the process is dropped). Notifications about the whole server (``list_changed``,
``resources/updated``) go to every session; others not tied to a request (log messages) only
when the process serves one session, since they may describe another session's work. Requests
from the server to clients (sampling, elicitation, roots) are not relayed: the runner advertises
no client capabilities, and answers any such request with "method not found" (``ping`` is
answered).

The process's stderr is read line by line: each line is logged (masked: environment values and
anything credential-shaped) and the last one is kept; it is what the console shows when the
process fails. When the process exits, every request still waiting on it gets a JSON-RPC error
saying so, at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import anyio
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from mcp_types import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from core.secrets_mask import MASK, mask_free_text
from upstreams.stdio.command import StdioCommand

logger = logging.getLogger("gatehouse.stdio")

# How long a process may take to answer ``initialize`` (``uvx``/``npx`` may download first).
STARTUP_SECONDS = 60.0
# How long, once stdout closed, to wait for the rest of stderr (the line that says why).
STDERR_DRAIN_SECONDS = 1.0
# A stderr line is logged and kept this long at most.
STDERR_LINE_LIMIT = 300
_HANDSHAKE_ID = 0
# JSON-RPC error code of a cancelled request, as the SDK's Streamable HTTP transport answers it.
REQUEST_CANCELLED = -32800
# Notifications about the server as a whole: every session of a shared process gets them. Any
# other notification not tied to a request (log messages, say) may describe another session's
# work, so it goes to a session only when it is the process's one session.
SERVER_WIDE_NOTIFICATIONS = frozenset({
    "notifications/tools/list_changed", "notifications/prompts/list_changed",
    "notifications/resources/list_changed", "notifications/resources/updated",
})
_GUARD = str(Path(__file__).with_name("orphan_guard.py"))
# What a process gets of the runner's own environment, besides the SDK's HOME, PATH, USER,
# LOGNAME, SHELL and TERM: how this host reaches the network (proxies, CA bundles) and its
# locale. Never the rest: the runner's environment holds Gatehouse's own secrets.
PASSED_VARIABLES = (
    "LANG", "LC_ALL", "TZ", "TMPDIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
)


def passed_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in PASSED_VARIABLES if os.environ.get(name)}
CLIENT_INFO = {"name": "gatehouse-stdio-runner", "version": "1.0"}


class Frontend(Protocol):
    """One HTTP session's side: takes what the process sends it, never blocking the process."""

    def deliver(self, message: JSONRPCMessage, related: RequestId | None) -> None: ...


class ChildGone(Exception):
    """The process is not there to take a message (it exited, or never started)."""


class Child:
    """One run of a stdio server process: spawn, handshake, route messages until it exits."""

    def __init__(self, command: StdioCommand, *, frontends: Callable[[], Iterable[Frontend]]) -> None:
        self.command = command
        self._frontends = frontends
        self.ready = anyio.Event()
        self.exited = anyio.Event()
        self.init_result: dict[str, Any] = {}
        # The last stderr line (masked), or why the process could not run.
        self.last_error = ""
        self._ids = itertools.count(1)
        # Renumbered request id -> (session, its own id, the renumbered progress token or "").
        self._pending: dict[int, tuple[Frontend, RequestId, str]] = {}
        # Renumbered progress token -> (session, its own token, its own request id).
        self._progress: dict[str, tuple[Frontend, Any, RequestId]] = {}
        self._write: WriteStream[SessionMessage] | None = None

    @property
    def is_running(self) -> bool:
        return self.ready.is_set() and not self.exited.is_set()

    # --- the process's life --------------------------------------------------------------------

    async def run(self) -> None:
        """Run the process until it exits (or the caller is cancelled: then it is stopped)."""
        argv = self.command.argv
        # Through the orphan guard: the process dies with the runner even if the runner is killed.
        guard = ["-I", _GUARD, str(os.getpid()), *argv]  # -I: the guard needs nothing but stdlib
        params = StdioServerParameters(
            command=sys.executable, args=guard, env={**passed_environment(), **self.command.env},
            cwd=self.command.cwd or None,
        )
        read_fd, errlog = -1, None
        stderr_done = anyio.Event()
        try:
            read_fd, write_fd = os.pipe()
            errlog = os.fdopen(write_fd, "w")
            async with stdio_client(params, errlog=errlog) as (read, write):
                errlog.close()  # the process holds its own copy: EOF on stderr means it is gone
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._read_stderr, read_fd, stderr_done)
                    read_fd = -1
                    self._write = write
                    # Nothing may escape into the SDK's task group: failures end up in last_error.
                    try:
                        await self._handshake(read, write)
                    except HandshakeFailed as exc:
                        failure = str(exc)
                    else:
                        failure = ""
                        self.ready.set()
                        logger.info("stdio server running", extra={"server": self.command.server})
                        await self._pump(read)
                    with anyio.move_on_after(STDERR_DRAIN_SECONDS):
                        await stderr_done.wait()
                    self.last_error = self.last_error or failure
                    tg.cancel_scope.cancel()
        except OSError as exc:
            self.last_error = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        finally:
            if errlog is not None and not errlog.closed:
                errlog.close()
            if read_fd >= 0:
                os.close(read_fd)
            self._write = None
            self.exited.set()
            self._fail_pending()

    async def _handshake(
        self, read: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]
    ) -> None:
        params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
        try:
            await write.send(SessionMessage(JSONRPCRequest(
                jsonrpc="2.0", id=_HANDSHAKE_ID, method="initialize", params=params
            )))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise HandshakeFailed("the process closed its input before initialize") from exc
        with anyio.move_on_after(STARTUP_SECONDS) as timer:
            async for item in read:
                if isinstance(item, Exception):
                    continue
                message = item.message
                if isinstance(message, JSONRPCResponse) and message.id == _HANDSHAKE_ID:
                    self.init_result = message.result
                    break
                if isinstance(message, JSONRPCError) and message.id == _HANDSHAKE_ID:
                    # Servers echo what they refused (an API key, say): masked like stderr.
                    refused = self.mask(message.error.message)
                    raise HandshakeFailed(f"the server refused initialize: {refused}")
            else:
                raise HandshakeFailed("the process exited before answering initialize")
        if timer.cancelled_caught:
            raise HandshakeFailed(f"no answer to initialize within {STARTUP_SECONDS:.0f}s")
        initialized = JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
        try:
            await write.send(SessionMessage(initialized))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise HandshakeFailed("the process closed its input after answering initialize") from exc

    async def _read_stderr(self, fd: int, done: anyio.Event) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024)
        pipe = os.fdopen(fd, "rb", 0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # a "line" over the limit: take what there is
                    line = await reader.read(64 * 1024)
                if not line:
                    return
                self._stderr_line(line.decode("utf-8", "replace"))
        finally:
            transport.close()
            done.set()

    def _stderr_line(self, raw: str) -> None:
        line = self.mask(raw.strip())[:STDERR_LINE_LIMIT]
        if line:
            self.last_error = line
            logger.info("stdio server stderr", extra={"server": self.command.server, "line": line})

    def mask(self, text: str) -> str:
        """``text`` without this command's environment values or anything credential-shaped."""
        for value in self.command.secret_values:
            text = text.replace(value, MASK)
        return mask_free_text(text)

    # --- messages from sessions to the process ------------------------------------------------

    async def send(self, frontend: Frontend, message: JSONRPCMessage) -> None:
        """One message from a session to the process, renumbered. Raises ``ChildGone``."""
        if isinstance(message, JSONRPCRequest):
            if message.method == "initialize":
                frontend.deliver(
                    JSONRPCResponse(jsonrpc="2.0", id=message.id, result=self._init_result_for(message)),
                    message.id,
                )
                return
            new_id = next(self._ids)
            params, token = self._renumber_progress(frontend, message, new_id)
            self._pending[new_id] = (frontend, message.id, token)
            await self._write_message(
                JSONRPCRequest(jsonrpc="2.0", id=new_id, method=message.method, **_params(params))
            )
        elif isinstance(message, JSONRPCNotification):
            if message.method == "notifications/initialized":
                return  # the runner sent its own
            params = message.params
            if message.method == "notifications/cancelled":
                renumbered = self._renumbered(frontend, (params or {}).get("requestId"))
                if renumbered is None:
                    return
                params = {**(params or {}), "requestId": renumbered}
                self._finish_cancelled(renumbered)
            await self._write_message(
                JSONRPCNotification(jsonrpc="2.0", method=message.method, **_params(params))
            )
        # A response from a client answers a server-to-client request, which the runner never relays.

    def _init_result_for(self, message: JSONRPCRequest) -> dict[str, Any]:
        """The process's ``initialize`` result, at the client's protocol version if it is older.

        The runner negotiated the newest handshake version with the process; a client that asked
        for an older one gets that one back (the SDK serves every handshake version alike).
        """
        asked = (message.params or {}).get("protocolVersion")
        ours = str(self.init_result.get("protocolVersion", LATEST_HANDSHAKE_VERSION))
        if isinstance(asked, str) and asked in HANDSHAKE_PROTOCOL_VERSIONS and asked < ours:
            return {**self.init_result, "protocolVersion": asked}
        return self.init_result

    def _renumber_progress(
        self, frontend: Frontend, message: JSONRPCRequest, new_id: int
    ) -> tuple[dict[str, Any] | None, str]:
        params = message.params
        meta = (params or {}).get("_meta")
        if not isinstance(meta, dict) or meta.get("progressToken") is None:
            return params, ""
        token = f"gh-{new_id}"
        self._progress[token] = (frontend, meta["progressToken"], message.id)
        return {**(params or {}), "_meta": {**meta, "progressToken": token}}, token

    def _finish_cancelled(self, new_id: int) -> None:
        """A cancelled request gets no answer from the process (the spec says so), but the 2025
        wire ends a request's stream only with one: answer "cancelled" now, drop a late reply."""
        frontend, own_id, token = self._pending.pop(new_id)
        self._progress.pop(token, None)
        error = ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
        frontend.deliver(JSONRPCError(jsonrpc="2.0", id=own_id, error=error), own_id)

    def _renumbered(self, frontend: Frontend, request_id: object) -> int | None:
        for new_id, (owner, own_id, _) in self._pending.items():
            if owner is frontend and own_id == request_id:
                return new_id
        return None

    async def _write_message(self, message: JSONRPCMessage) -> None:
        if self._write is None or self.exited.is_set():
            raise ChildGone(self.command.server)
        try:
            await self._write.send(SessionMessage(message))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise ChildGone(self.command.server) from exc

    async def forget(self, frontend: Frontend) -> None:
        """A session ended: cancel what it still waits for in the process and forget it."""
        mine = [new_id for new_id, (owner, _, _) in self._pending.items() if owner is frontend]
        for new_id in mine:
            _, _, token = self._pending.pop(new_id)
            self._progress.pop(token, None)
            with suppress(ChildGone):
                await self._write_message(JSONRPCNotification(
                    jsonrpc="2.0", method="notifications/cancelled",
                    params={"requestId": new_id, "reason": "the client's session ended"},
                ))

    # --- messages from the process to sessions ------------------------------------------------

    async def _pump(self, read: ReadStream[SessionMessage | Exception]) -> None:
        async for item in read:
            if isinstance(item, Exception):
                logger.warning(
                    "stdio server wrote a line that is not JSON-RPC", extra={"server": self.command.server}
                )
                continue
            await self._route(item.message)

    async def _route(self, message: JSONRPCMessage) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            entry = self._pending.pop(message.id, None) if isinstance(message.id, int) else None
            if entry is not None:
                frontend, own_id, token = entry
                self._progress.pop(token, None)
                frontend.deliver(message.model_copy(update={"id": own_id}), own_id)
        elif isinstance(message, JSONRPCNotification):
            params = message.params or {}
            if message.method == "notifications/progress":
                progress = self._progress.get(str(params.get("progressToken")))
                if progress is not None:
                    frontend, own_token, own_id = progress
                    relayed = message.model_copy(update={"params": {**params, "progressToken": own_token}})
                    frontend.deliver(relayed, own_id)
            elif message.method != "notifications/cancelled":
                frontends = list(self._frontends())
                if message.method in SERVER_WIDE_NOTIFICATIONS or len(frontends) == 1:
                    for frontend in frontends:
                        frontend.deliver(message, None)
        else:
            answer: JSONRPCMessage = (
                JSONRPCResponse(jsonrpc="2.0", id=message.id, result={}) if message.method == "ping"
                else JSONRPCError(jsonrpc="2.0", id=message.id, error=ErrorData(
                    code=METHOD_NOT_FOUND,
                    message="Gatehouse's stdio runner does not relay requests from the server to clients.",
                ))
            )
            with suppress(ChildGone):
                await self._write_message(answer)

    def _fail_pending(self) -> None:
        """The process is gone: every request still waiting on it gets an error now."""
        why = f" Its last stderr line: {self.last_error}" if self.last_error else ""
        error = ErrorData(
            code=INTERNAL_ERROR,
            message=f"The stdio server {self.command.server!r} exited during this request; "
            f"Gatehouse restarts it, so the next request can succeed.{why}",
        )
        pending, self._pending, self._progress = self._pending, {}, {}
        for frontend, own_id, _ in pending.values():
            frontend.deliver(JSONRPCError(jsonrpc="2.0", id=own_id, error=error), own_id)


class HandshakeFailed(Exception):
    pass


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` only when there are any: ``"params": null`` is invalid JSON-RPC, and servers built
    with the TypeScript SDK ignore a request that carries it."""
    return {} if params is None else {"params": params}

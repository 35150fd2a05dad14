"""Keeping stdio processes running: one ``Supervisor`` per process slot, one ``HostedServer`` per server.

A ``Supervisor`` starts its command, and when the process exits starts it again after a pause
that doubles with each quick failure (0.5 s, 1 s, 2 s … capped at 30 s) and resets once a process
has stayed up for 10 s. Its state is what the console and ``/ready`` show:

- ``starting``: the first process is being started (spawned, answering ``initialize``);
- ``running``: a process answered ``initialize`` and has not exited;
- ``restarting``: a process that was running exited (a crash, ``kill -9``); a new one is on its way;
- ``failed``: the last process exited (or could not be spawned) before answering ``initialize``;
  ``last_error`` holds its last stderr line. It is still retried, with the backoff.

A ``HostedServer`` owns a server's processes: with ``shared`` isolation one supervisor, started
with the runner, serves every session; with ``session`` isolation each MCP session gets its own
supervisor, started by the session's ``initialize`` and stopped (its process killed) when the
session ends, and at ``max_processes`` a new session is refused (``AtCapacity``). Stopping the
hosted server stops every process it owns.
"""

from __future__ import annotations

import logging
import time

import anyio
from anyio.abc import TaskGroup

from upstreams.stdio.child import Child, Frontend
from upstreams.stdio.command import StdioCommand
from upstreams.stdio.report import ServerStatus, State

logger = logging.getLogger("gatehouse.stdio")

RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
# A process that ran this long was healthy: the next restart starts the backoff afresh.
STABLE_SECONDS = 10.0



class NotRunning(Exception):
    """No process is ready to take a request (it failed to start, or is restarting)."""


class AtCapacity(Exception):
    """A ``session``-isolated server already runs ``max_processes`` processes."""


class Supervisor:
    """One process slot: keeps a ``Child`` of ``command`` running, restarting it with backoff."""

    def __init__(self, command: StdioCommand) -> None:
        self.command = command
        self.state: State = "starting"
        self.restarts = 0
        self.last_error = ""
        self.child: Child | None = None
        # The sessions this slot serves: a restarted process serves them too.
        self.frontends: set[Frontend] = set()
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False
        self.stopped = anyio.Event()

    async def run(self) -> None:
        """Until cancelled (``stop``); stopping kills the current process."""
        failures = 0
        try:
            with anyio.CancelScope() as self._scope:
                if self._cancelled:  # stopped before it ran
                    return
                while True:
                    child = Child(self.command, frontends=lambda: self.frontends)
                    self.child = child
                    started = time.monotonic()
                    try:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(self._mark_running, child)
                            await child.run()
                            tg.cancel_scope.cancel()
                    except Exception as exc:  # never into the runner's task group
                        # (out of file descriptors, say): a failed start, retried with the backoff.
                        logger.exception("stdio process failed", extra={"server": self.command.server})
                        why = f"the runner could not run it: {type(exc).__name__}"
                        child.last_error = child.last_error or why
                    ran = child.ready.is_set()
                    self.last_error = child.last_error or ("the process exited" if ran else "")
                    failures = 0 if ran and time.monotonic() - started >= STABLE_SECONDS else failures + 1
                    self.state = "restarting" if ran else "failed"
                    delay = min(RESTART_FIRST_SECONDS * 2 ** max(failures - 1, 0), RESTART_MAX_SECONDS)
                    logger.warning(
                        "stdio server exited" if ran else "stdio server failed to start",
                        extra={"server": self.command.server, "last_error": self.last_error,
                               "restart_in_seconds": delay},
                    )
                    await anyio.sleep(delay)
                    self.restarts += 1
        finally:
            self.state = "stopped"
            self.stopped.set()

    async def _mark_running(self, child: Child) -> None:
        await child.ready.wait()
        self.state = "running"

    def cancel(self) -> None:
        """Start stopping (the process is stopped in the background; ``stop`` waits for it)."""
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def stop(self) -> None:
        self.cancel()
        with anyio.CancelScope(shield=True):
            await self.stopped.wait()

    def describe(self) -> str:
        """Why no process takes requests, for the client's error message."""
        name = self.command.server
        why = f": {self.last_error}" if self.last_error else "."
        if self.state == "failed":
            return f"The stdio server {name!r} failed to start{why}"
        if self.state == "stopped":
            return f"The stdio server {name!r} was stopped."
        return f"The stdio server {name!r} is {self.state} and did not become ready in time{why}"

    async def ready_child(self, *, timeout: float) -> Child:
        """The running process, waiting up to ``timeout`` for one. Raises ``NotRunning``."""
        deadline = time.monotonic() + timeout
        while True:
            child = self.child
            if child is not None and child.is_running:
                return child
            # A command that fails at start fails the request now, not after the backoff.
            if self.state == "failed" or time.monotonic() >= deadline or self.stopped.is_set():
                raise NotRunning(self.describe())
            await anyio.sleep(0.05)


class HostedServer:
    """A registered stdio server on this runner: its ``shared`` process or its per-session ones."""

    def __init__(self, command: StdioCommand, task_group: TaskGroup) -> None:
        self.command = command
        self._tg = task_group
        self._shared: Supervisor | None = None
        self._sessions: dict[str, Supervisor] = {}
        # Session isolation: the last process's failure stays visible after its session ended.
        self._last_error = ""
        self._idle_state: State = "idle"
        self._restarts = 0
        self._stopped = False
        if command.isolation == "shared":
            self._shared = self._start()

    def _start(self) -> Supervisor:
        supervisor = Supervisor(self.command)
        self._tg.start_soon(supervisor.run)
        return supervisor

    def open(self, session_id: str) -> Supervisor:
        """The process slot that serves a new session. Raises ``AtCapacity``, or ``NotRunning``
        once the server was stopped (disabled, or changed: the runner hosts it anew)."""
        if self._stopped:
            raise NotRunning(f"The stdio server {self.command.server!r} was stopped.")
        if self._shared is not None:
            return self._shared
        if len(self._sessions) >= self.command.max_processes:
            raise AtCapacity(
                f"The stdio server {self.command.server!r} already runs {len(self._sessions)} processes, its "
                f"limit (max processes {self.command.max_processes}); try again when a session ends."
            )
        supervisor = self._sessions[session_id] = self._start()
        return supervisor

    async def close(self, session_id: str) -> None:
        """A session ended: with ``session`` isolation its process is killed."""
        supervisor = self._sessions.pop(session_id, None)
        if supervisor is not None:
            self._last_error = supervisor.last_error or self._last_error
            self._idle_state = "failed" if supervisor.state == "failed" else "idle"
            self._restarts += supervisor.restarts
            await supervisor.stop()

    async def stop(self) -> None:
        """Stop every process it owns, all at once (each may take seconds to exit)."""
        self._stopped = True
        supervisors = [s for s in (self._shared, *self._sessions.values()) if s is not None]
        self._sessions.clear()
        for supervisor in supervisors:
            supervisor.cancel()
        for supervisor in supervisors:
            await supervisor.stop()

    def status(self) -> ServerStatus:
        if self._shared is not None:
            s = self._shared
            return ServerStatus(
                server=self.command.server, state=s.state, processes=int(s.state == "running"),
                restarts=s.restarts, last_error=s.last_error,
            )
        slots = list(self._sessions.values())
        running = sum(s.state == "running" for s in slots)
        states = {s.state for s in slots}
        state: State
        if running:
            state = "running"
        elif "restarting" in states or "starting" in states:
            state = "restarting" if "restarting" in states else "starting"
        elif "failed" in states:
            state = "failed"
        else:
            state = self._idle_state
        errors = [s.last_error for s in slots if s.last_error]
        return ServerStatus(
            server=self.command.server, state=state, processes=running,
            restarts=self._restarts + sum(s.restarts for s in slots),
            last_error=errors[-1] if errors else self._last_error,
        )

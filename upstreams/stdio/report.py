"""What the runner reports for each stdio server (the ``StdioStatus`` row): plain data, no SDK import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["starting", "running", "restarting", "failed", "idle", "stopped"]


@dataclass(frozen=True)
class ServerStatus:
    server: str
    state: State
    processes: int
    restarts: int
    # The last stderr line of its process (masked), or why it could not run.
    last_error: str

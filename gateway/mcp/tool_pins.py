"""Tool pinning on the gateway's hot path: which listed tools pass, and what this process has seen.

A pinned server's state comes with admission (``UpstreamTarget.pins``: approved hash and the
last hash any process saw, per tool; loaded on admission's one database hop). Each relayed
``tools/list`` answer is checked tool by tool (``PinFilter.keep``): a tool passes only while its
current definition hashes to the approved one. This process remembers the last hash it saw per
(server, tool) in memory; only a sighting the database does not know yet (a new last seen hash,
a change never recorded) costs a database hop, once (``PinFilter.flush``), which records the
pending change and audits ``tool.changed`` exactly once across all instances.

``tools/call`` (``policy.refuse_unpinned_tools``) needs no extra hop: a call passes only if the
tool is approved and neither this process's last sighting nor the database's last seen hash
says its definition changed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gateway.admission.db_pool import run_db
from upstreams.pinning import ToolPins, definition_hash, definition_of
from upstreams.pinning_services import SeenDefinition, note_seen_definitions
from upstreams.target import UpstreamTarget

logger = logging.getLogger("gatehouse.gateway")

_MAX_ENTRIES = 50_000
# (server id, tool) -> the hash of the definition this process last saw listed.
_seen: dict[tuple[int, str], str] = {}
# (server id, tool, hash) of changes this process knows are recorded in the database.
_recorded: set[tuple[int, str, str]] = set()
# The newest pins admission loaded per server in this process: a long-lived stream (legacy
# SSE) filters with the state its latest POST saw, not the state when the stream opened.
_latest: dict[int, ToolPins | None] = {}
_lock = threading.Lock()


def last_seen(server_id: int, tool: str) -> str | None:
    return _seen.get((server_id, tool))


def remember(target: UpstreamTarget) -> None:
    """Note the pins of a freshly admitted request (None: the server no longer pins)."""
    with _lock:
        if len(_latest) >= _MAX_ENTRIES:
            _latest.clear()
        _latest[target.id] = target.pins


def current_pins(target: UpstreamTarget) -> ToolPins | None:
    return _latest.get(target.id, target.pins) if target.id in _latest else target.pins


class PinFilter:
    """The tool filter of one relayed answer (or stream) of a possibly pinned server."""

    def __init__(self, target: UpstreamTarget) -> None:
        self.target = target
        self.sightings: dict[tuple[str, str], SeenDefinition] = {}

    @property
    def pins(self) -> ToolPins | None:
        return current_pins(self.target)

    def keep(self, pins: ToolPins, tool: dict[str, Any]) -> bool:
        """Whether ``tool`` (a ``tools/list`` entry) matches its approved definition."""
        name = tool.get("name")
        if not isinstance(name, str):
            return False
        digest = definition_hash(tool)
        key = (self.target.id, name)
        with _lock:
            if len(_seen) >= _MAX_ENTRIES:
                _seen.clear()
            _seen[key] = digest
        approved = pins.approved.get(name)
        stale_db = approved is not None and pins.last_seen.get(name) != digest
        unrecorded = digest != approved and (self.target.id, name, digest) not in _recorded
        if stale_db or unrecorded:
            self.sightings[(name, digest)] = SeenDefinition(
                name=name, definition=definition_of(tool), hash=digest
            )
        return approved == digest

    async def flush(self) -> None:
        """Write what the database does not know yet (rare: a change, once per process)."""
        if not self.sightings:
            return
        sightings, self.sightings = list(self.sightings.values()), {}
        try:
            await run_db(note_seen_definitions, server_id=self.target.id, seen=sightings)
        except Exception:  # the answer is already filtered; retried on the next list
            logger.warning("recording seen tool definitions failed", extra={"server": self.target.name},
                           exc_info=True)
            return
        with _lock:
            if len(_recorded) >= _MAX_ENTRIES:
                _recorded.clear()
            _recorded.update((self.target.id, s.name, s.hash) for s in sightings)


def forget_process_state() -> None:
    """Tests only: drop what this process has seen."""
    with _lock:
        _seen.clear()
        _recorded.clear()
        _latest.clear()

"""A session's life after admission: the steps the flows share (``lifecycle``), the upstream
DELETE outbox, the legacy SSE close that outlives a database outage (``closing``) and the watch
that re-checks open streams (``watch``).

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.sessions.closing import close_stream_session
    from gateway.sessions.lifecycle import close_session, end_if_upstream_forgot, start_session
    from gateway.sessions.outbox import (
        DELETE_MAX_ATTEMPTS,
        UpstreamDeleteFailed,
        deliver_upstream_deletes,
        ends_upstream,
        retry_upstream_delete,
    )
    from gateway.sessions.watch import (
        INTERVAL,
        RECHECK_DEADLINE,
        RECHECK_FAILED,
        StreamSupervisor,
        StreamWatch,
        supervisor,
    )

_HOMES = {
    "DELETE_MAX_ATTEMPTS": "gateway.sessions.outbox",
    "INTERVAL": "gateway.sessions.watch",
    "RECHECK_DEADLINE": "gateway.sessions.watch",
    "RECHECK_FAILED": "gateway.sessions.watch",
    "StreamSupervisor": "gateway.sessions.watch",
    "StreamWatch": "gateway.sessions.watch",
    "UpstreamDeleteFailed": "gateway.sessions.outbox",
    "close_session": "gateway.sessions.lifecycle",
    "close_stream_session": "gateway.sessions.closing",
    "deliver_upstream_deletes": "gateway.sessions.outbox",
    "end_if_upstream_forgot": "gateway.sessions.lifecycle",
    "ends_upstream": "gateway.sessions.outbox",
    "retry_upstream_delete": "gateway.sessions.outbox",
    "start_session": "gateway.sessions.lifecycle",
    "supervisor": "gateway.sessions.watch",
}
__all__ = [
    "DELETE_MAX_ATTEMPTS",
    "INTERVAL",
    "RECHECK_DEADLINE",
    "RECHECK_FAILED",
    "StreamSupervisor",
    "StreamWatch",
    "UpstreamDeleteFailed",
    "close_session",
    "close_stream_session",
    "deliver_upstream_deletes",
    "end_if_upstream_forgot",
    "ends_upstream",
    "retry_upstream_delete",
    "start_session",
    "supervisor",
]
__getattr__ = lazy_exports(__name__, _HOMES)

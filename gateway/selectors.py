"""Session reads for the console and API: live sessions and recently ended ones."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from gateway.models import SessionBinding


def _sessions() -> QuerySet[SessionBinding]:
    return SessionBinding.objects.select_related("token", "server")


def live_sessions(*, server: str = "", token_id: int | None = None) -> QuerySet[SessionBinding]:
    """Active sessions, most recently used first."""
    sessions = _sessions().filter(status=SessionBinding.Status.ACTIVE).order_by("-last_seen_at")
    if server:
        sessions = sessions.filter(server__name=server)
    if token_id is not None:
        sessions = sessions.filter(token_id=token_id)
    return sessions


def recent_sessions(
    *, within: timedelta = timedelta(days=1), server: str = "", token_id: int | None = None
) -> QuerySet[SessionBinding]:
    """Sessions that ended within ``within``, most recently ended first."""
    sessions = (
        _sessions()
        .exclude(status=SessionBinding.Status.ACTIVE)
        .filter(ended_at__gte=timezone.now() - within)
        .order_by("-ended_at")
    )
    if server:
        sessions = sessions.filter(server__name=server)
    if token_id is not None:
        sessions = sessions.filter(token_id=token_id)
    return sessions


def session_by_id(*, session_id: str) -> SessionBinding | None:
    return _sessions().filter(pk=session_id[:64]).first()


def live_session_counts() -> dict[str, int]:
    """Active sessions per server name (one grouped query; the ``/metrics`` scrape reads it)."""
    rows = (
        SessionBinding.objects.filter(status=SessionBinding.Status.ACTIVE)
        .values_list("server__name").annotate(n=Count("id")).order_by()
    )
    return {name: n for name, n in rows}

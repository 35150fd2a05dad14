"""Console pages for gateway sessions: live and recently ended sessions, and terminate."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.permissions import can_manage, console_admin_required, console_reader_required
from gateway import selectors, services
from gateway.models import SessionBinding

PAGE_SIZE = 50
RECENT_LIMIT = 50


def _token_filter(request: HttpRequest) -> int | None:
    value = request.GET.get("token", "")
    return int(value) if value.isdigit() else None


@console_reader_required
def session_list(request: HttpRequest) -> HttpResponse:
    server = request.GET.get("server", "").strip()
    token_id = _token_filter(request)
    live = Paginator(selectors.live_sessions(server=server, token_id=token_id), PAGE_SIZE)
    return render(
        request,
        "console/sessions/list.html",
        {
            "live": live.get_page(request.GET.get("page")),
            "recent": selectors.recent_sessions(server=server, token_id=token_id)[:RECENT_LIMIT],
            "server": server,
            "token_id": token_id,
            "now": timezone.now(),
            "idle_limit": settings.SESSION_IDLE_SECONDS,
            "max_age": settings.SESSION_MAX_SECONDS,
            "sweep_seconds": settings.SWEEP_SECONDS,
            "can_manage": can_manage(request.user),
        },
    )


@console_admin_required
@require_POST
def session_terminate(request: HttpRequest, session_id: str) -> HttpResponse:
    """End the session as expiry does: status terminated, DELETE upstream, audit."""
    session = selectors.session_by_id(session_id=session_id)
    if session is None:
        raise Http404("No such session.")
    actor = request.user.get_username()
    ended = services.end_session(
        session_id=session.pk,
        status=SessionBinding.Status.TERMINATED,
        reason=f"terminated by {actor}",
        actor=actor,
        notify_upstream=True,
    )
    label = f"{session.token.display_prefix} on {session.server.name}"
    if ended:
        messages.success(request, f"Session of {label} terminated.")
    else:
        messages.info(request, f"Session of {label} had already ended.")
    return redirect("console-sessions")

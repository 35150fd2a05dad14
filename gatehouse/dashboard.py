"""Console landing page: the dashboard, every number a link to the list it counts.

Composition root (it reads every app's selectors). At a million audit events the page costs a
handful of indexed queries: counts over id ranges found from time bounds (``audit.selectors``),
never a scan of the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from audit import selectors as audit_selectors
from audit import usage as audit_usage
from audit.charts import usage_chart
from audit.models import AuditEvent
from audit.webhook import webhook_status
from core.permissions import can_read_console, console_reader_required
from gateway import selectors as session_selectors
from tokens import selectors as token_selectors
from upstreams import selectors as server_selectors

WEEK = timedelta(days=7)
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Figure:
    label: str
    value: int
    url: str


def _audit_url(**params: str) -> str:
    return f"{reverse('audit-list')}?{urlencode(params)}"


def _since(moment: datetime) -> str:
    # Minute precision, as the audit list's filter field takes it; the count uses the same bound.
    return moment.strftime("%Y-%m-%dT%H:%M")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    # People who are neither staff nor auditors land on "My access", never on the admin console.
    if not can_read_console(request.user):
        return redirect("console-me")
    return _dashboard(request)


@dataclass(frozen=True)
class FirstSteps:
    """Where a new deployment stands on the way to a connected client (server, then token)."""

    first_server: str
    has_token: bool

    @property
    def done(self) -> bool:
        return bool(self.first_server) and self.has_token


def _first_steps() -> FirstSteps:
    first = server_selectors.all_servers().order_by("created_at", "pk").values_list("name", flat=True).first()
    return FirstSteps(first_server=first or "", has_token=token_selectors.token_list().exists())


@console_reader_required
def _dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since_text = _since(now - DAY)
    since = datetime.strptime(since_text, "%Y-%m-%dT%H:%M").replace(tzinfo=now.tzinfo)
    tokens_url = reverse("console-tokens")
    figures = [
        Figure("Active tokens", token_selectors.token_list(status="active", now=now).count(),
               f"{tokens_url}?status=active"),
        Figure("Expiring within 7 days",
               token_selectors.token_list(status="active", expiring_within=WEEK, now=now).count(),
               f"{tokens_url}?status=active&expiring=7"),
        Figure("Live sessions", session_selectors.live_sessions().count(), reverse("console-sessions")),
        Figure("Gateway requests, 24 h",
               audit_selectors.count_events(filters=audit_selectors.AuditFilter(since=since, event="mcp.*")),
               _audit_url(since=since_text, event="mcp.*")),
        Figure("Refusals, 24 h",
               audit_selectors.count_events(filters=audit_selectors.AuditFilter(
                   since=since, outcome=AuditEvent.Outcome.DENIED)),
               _audit_url(since=since_text, outcome=AuditEvent.Outcome.DENIED)),
    ]
    activity = audit_usage.token_usage(jti="", days=1, now=now)
    return render(request, "console/dashboard.html", {
        "first_steps": _first_steps(),
        "figures": figures,
        "activity": activity,
        "chart": usage_chart(activity.buckets, hourly=True),
        "top_tools": [
            (tool, _audit_url(since=since_text, server=tool.server, tool=tool.tool))
            for tool in activity.top_tools
        ],
        "admin_actions": audit_selectors.recent_admin_actions(),
        "webhook": webhook_status(),
    })

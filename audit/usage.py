"""Per-token usage: calls per hour or day, by outcome, the most used tools, the last use; read
from the token index alone (see ``audit.selectors`` for the performance model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.selectors import GATEWAY_EVENTS, first_id_at_or_after


@dataclass(frozen=True)
class UsageBucket:
    start: datetime
    requests: int
    denials: int


@dataclass(frozen=True)
class ToolUse:
    tool: str
    server: str
    calls: int
    denied: int


@dataclass(frozen=True)
class TokenUsage:
    jti: str
    days: int
    hourly: bool
    buckets: list[UsageBucket]
    top_tools: list[ToolUse]
    last_used: datetime | None
    last_event: AuditEvent | None
    total_requests: int
    total_denials: int


def _bucket_starts(*, now: datetime, days: int, hourly: bool) -> list[datetime]:
    if hourly:
        first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        return [first + timedelta(hours=i) for i in range(24)]
    first = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return [first + timedelta(days=i) for i in range(days)]


def _bucket_of_id(first_ids: list[int], low: int, high: int) -> Case | Value:
    """SQL for "which bucket holds this id", as a binary search: log2(buckets) comparisons per row."""
    if low == high:
        return Value(low)
    middle = (low + high + 1) // 2
    return Case(
        When(id__lt=first_ids[middle], then=_bucket_of_id(first_ids, low, middle - 1)),
        default=_bucket_of_id(first_ids, middle, high),
        output_field=IntegerField(),
    )


def token_usage(*, jti: str, days: int = 30, now: datetime | None = None) -> TokenUsage:
    """Requests and denials per day (per hour for one day), top tools and last use of a token
    (of every token with ``jti=""``: the dashboard's activity).

    Buckets are id ranges (event times follow ids), found with one index probe per bucket, so
    the counting needs no per-row date arithmetic and reads only the token index.
    """
    now = now or timezone.now()
    hourly = days <= 1
    starts = _bucket_starts(now=now, days=days, hourly=hourly)
    bounds = [first_id_at_or_after(start) for start in starts]
    counts: dict[int, list[int]] = {}
    gateway = AuditEvent.objects.none()
    if bounds[0] is not None:
        gateway = AuditEvent.objects.filter(event__in=GATEWAY_EVENTS, id__gte=bounds[0])
        if jti:
            gateway = gateway.filter(token_jti=jti)
        known = [bound for bound in bounds if bound is not None]  # buckets after the last event are empty
        bucket = _bucket_of_id(known, 0, len(known) - 1)
        rows = gateway.annotate(bucket=bucket).values("bucket", "outcome").annotate(n=Count("id")).order_by()
        for row in rows:
            entry = counts.setdefault(row["bucket"], [0, 0])
            entry[0] += row["n"]
            if row["outcome"] == AuditEvent.Outcome.DENIED:
                entry[1] += row["n"]
    buckets = [
        UsageBucket(start=start, requests=counts.get(i, [0, 0])[0], denials=counts.get(i, [0, 0])[1])
        for i, start in enumerate(starts)
    ]
    tools = (
        gateway.filter(event__in=(events.MCP_TOOL_CALL, events.MCP_TOOL_DENIED)).exclude(tool="")
        .values("tool", "server")
        .annotate(calls=Count("id"), denied=Count("id", filter=Q(outcome=AuditEvent.Outcome.DENIED)))
        .order_by("-calls", "tool")[:10]
    )
    used = AuditEvent.objects.filter(event__in=GATEWAY_EVENTS, outcome=AuditEvent.Outcome.SUCCESS)
    last_event = (used.filter(token_jti=jti) if jti else used).order_by("-id").first()
    return TokenUsage(
        jti=jti, days=days, hourly=hourly, buckets=buckets,
        top_tools=[ToolUse(**row) for row in tools],
        last_used=last_event.created_at if last_event else None,
        last_event=last_event,
        total_requests=sum(b.requests for b in buckets),
        total_denials=sum(b.denials for b in buckets),
    )

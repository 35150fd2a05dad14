"""Reads of the audit log: filtered, keyset-paginated pages and exports (per-token usage: ``audit.usage``).

Performance model (a million events and beyond):
- Pages are keyset-paginated by id (``id < cursor ORDER BY id DESC LIMIT n``); nothing counts
  the whole table. Every equality filter has a ``(column, id)`` index, so a filtered page is an
  index range scan. The token index also carries time, event, outcome, server and tool, so the
  per-token usage page aggregates from the index alone.
- A token given as a display prefix (``gth_1a2b3c4d``) is resolved to its jtis by a loose index
  scan (one seek per distinct jti), then filtered exactly.
- ``created_at`` never decreases along the chain (the writer clamps it), so a time range becomes
  an id range, found with one probe of the ``(created_at, id)`` index; it then combines with any
  other filter's index.
- Free-text search over ``detail`` (plus exact matches of the indexed columns): on PostgreSQL
  with the pg_trgm index (migration 0003) it is an index search. Elsewhere (SQLite, or
  PostgreSQL without pg_trgm, or a term shorter than three characters) it is a bounded scan:
  each request examines at most ``SEARCH_SCAN_LIMIT`` events by id window, newest first, and the
  page says which id range it covered and offers to continue.
  Exports always search exhaustively (they stream anyway).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Max, Q, QuerySet, TextField
from django.db.models.functions import Cast

from audit import events
from audit.models import AuditEvent
from core.secrets_mask import TOKEN_PREFIX, mask_secrets, token_display_prefix

PAGE_SIZE = 50
SEARCH_WINDOW = 50_000
SEARCH_SCAN_LIMIT = 200_000
EXPORT_CHUNK = 2_000
_JTI_LENGTH = 32  # tokens.services: secrets.token_hex(16)
_TOKEN_PREFIX_FANOUT = 100
_TRIGRAM_INDEX = "audit_detail_trgm_idx"

# Event families offered as one filter choice ("mcp.*").
EVENT_NAMES = sorted(
    value for name, value in vars(events).items() if name.isupper() and isinstance(value, str)
)
GATEWAY_EVENTS = (events.MCP_REQUEST, events.MCP_TOOL_CALL, events.MCP_TOOL_DENIED, events.AUTH_DENIED)


@dataclass(frozen=True)
class AuditFilter:
    """What the console, the export and the API filter by; empty strings mean "any"."""

    since: datetime | None = None
    until: datetime | None = None
    event: str = ""
    outcome: str = ""
    token: str = ""
    owner: str = ""
    server: str = ""
    tool: str = ""
    session: str = ""
    client_ip: str = ""
    q: str = ""

    def as_params(self) -> dict[str, str]:
        """Non-empty filters as query parameters (times in ISO 8601)."""
        params: dict[str, str] = {}
        for name, value in asdict(self).items():
            if isinstance(value, datetime):
                params[name] = value.isoformat()
            elif value:
                params[name] = str(value)
        return params


@dataclass(frozen=True)
class SearchWindow:
    """The id range a bounded search examined without filling the page."""

    low_id: int
    high_id: int


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    older: int | None = None  # pass as ?before=
    newer: int | None = None  # pass as ?after=
    searched: SearchWindow | None = None


@dataclass(frozen=True)
class _Scope:
    """A filtered queryset plus the id range the time filter maps to (low inclusive, high exclusive)."""

    queryset: QuerySet[AuditEvent]
    low: int | None = None
    high: int | None = None
    empty: bool = False


# --- filters ----------------------------------------------------------------------------------


def first_id_at_or_after(moment: datetime) -> int | None:
    return (
        AuditEvent.objects.filter(created_at__gte=moment)
        .order_by("created_at", "id").values_list("id", flat=True).first()
    )


def _prefix_upper_bound(prefix: str) -> str:
    return prefix + "\U0010ffff"


def token_jtis(value: str) -> list[str] | None:
    """The jtis a token filter means: a full jti, a display prefix (``gth_1a2b3c4d…``), a jti
    prefix, or a pasted token (reduced to its display prefix). None: too many to list."""
    value = value.strip()
    if value.startswith(TOKEN_PREFIX) and mask_secrets(value) != value:
        value = token_display_prefix(value)
    if value.startswith(TOKEN_PREFIX):
        value = value[len(TOKEN_PREFIX):]
    value = value.rstrip("…").rstrip(".").strip()
    if not value:
        return []
    if len(value) >= _JTI_LENGTH:
        return [value]
    # A loose index scan: one index seek per distinct jti, however many events each one has.
    jtis: list[str] = []
    in_range = AuditEvent.objects.filter(token_jti__lt=_prefix_upper_bound(value)).order_by("token_jti")
    following = in_range.filter(token_jti__gte=value).values_list("token_jti", flat=True).first()
    while following is not None and len(jtis) <= _TOKEN_PREFIX_FANOUT:
        if following.startswith(value):
            jtis.append(following)
        following = in_range.filter(token_jti__gt=following).values_list("token_jti", flat=True).first()
    return None if len(jtis) > _TOKEN_PREFIX_FANOUT else jtis


def _event_condition(value: str) -> Q:
    if value.endswith(".*") or value.endswith("."):
        family = value.rstrip("*")
        return Q(event__in=[name for name in EVENT_NAMES if name.startswith(family)] or [value])
    return Q(event=value)


def _scope(filters: AuditFilter) -> _Scope:
    qs = AuditEvent.objects.all()
    low = high = None
    if filters.since is not None:
        low = first_id_at_or_after(filters.since)
        if low is None:
            return _Scope(qs.none(), empty=True)
    if filters.until is not None:
        high = first_id_at_or_after(filters.until)
    if low is not None:
        qs = qs.filter(id__gte=low)
    if high is not None:
        qs = qs.filter(id__lt=high)
    if filters.event:
        qs = qs.filter(_event_condition(filters.event))
    if filters.outcome:
        qs = qs.filter(outcome=filters.outcome)
    if filters.token:
        jtis = token_jtis(filters.token)
        if jtis is None:
            prefix = filters.token.removeprefix(TOKEN_PREFIX).rstrip("…")
            qs = qs.filter(token_jti__startswith=prefix)
        elif not jtis:
            return _Scope(qs.none(), empty=True)
        else:
            qs = qs.filter(token_jti=jtis[0]) if len(jtis) == 1 else qs.filter(token_jti__in=jtis)
    for name, column in (("owner", "owner"), ("server", "server"), ("tool", "tool"),
                         ("session", "session_id"), ("client_ip", "client_ip")):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{column: value})
    return _Scope(qs, low=low, high=high)


_DISPLAY_PREFIX_RE = re.compile(r"gth_([0-9a-f]{8})…?")


def _text_condition(text: str) -> Q:
    """A search term: anywhere in ``detail``, or exactly an event name, owner, server, tool,
    session, client IP or token display prefix. Each of those columns has a ``(column, id)`` index,
    so PostgreSQL ORs index scans (with the trigram index on ``detail``) instead of reading rows."""
    term = text.strip()
    condition = Q(detail_text__icontains=text)
    if not term:
        return condition
    for column in ("event", "owner", "server", "tool", "session_id"):
        condition |= Q(**{column: term})
    with contextlib.suppress(ValueError):  # not an IP address: nothing to match there
        condition |= Q(client_ip=str(ipaddress.ip_address(term)))
    prefix = _DISPLAY_PREFIX_RE.fullmatch(term)
    if prefix:
        jti = prefix.group(1)
        condition |= Q(token_jti__gte=jti, token_jti__lt=_prefix_upper_bound(jti))
    return condition


def _with_text(qs: QuerySet[AuditEvent], text: str) -> QuerySet[AuditEvent]:
    return qs.alias(detail_text=Cast("detail", output_field=TextField())).filter(_text_condition(text))


@lru_cache(maxsize=4)
def _has_trigram_index(alias: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [_TRIGRAM_INDEX])
        return cursor.fetchone() is not None


def search_uses_index(text: str) -> bool:
    """Whether a detail search for ``text`` is served by an index (else: bounded scan)."""
    return (
        connection.vendor == "postgresql"
        and len(text) >= 3
        and _has_trigram_index(connection.alias)
    )


def filtered_events(*, filters: AuditFilter) -> QuerySet[AuditEvent]:
    """Every event matching ``filters`` (search included, unbounded); unordered."""
    scope = _scope(filters)
    return _with_text(scope.queryset, filters.q) if filters.q else scope.queryset


# --- pages ------------------------------------------------------------------------------------


def event_page(
    *, filters: AuditFilter, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> EventPage:
    """One page, newest first: the ``size`` events older than ``before``, or newer than ``after``."""
    scope = _scope(filters)
    if scope.empty:
        return EventPage(events=[])
    if filters.q and not search_uses_index(filters.q):
        return _scanned_page(scope, filters.q, before=before, after=after, size=size)
    qs = _with_text(scope.queryset, filters.q) if filters.q else scope.queryset
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return EventPage(events=rows, older=rows[-1].pk if rows else after + 1,
                         newer=rows[0].pk if more_newer else None)
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    newer = None
    if before is not None:  # we came from newer pages
        newer = rows[0].pk if rows else before - 1
    return EventPage(events=rows, older=rows[-1].pk if more_older else None, newer=newer)


def _id_extent() -> tuple[int, int] | None:
    bounds = AuditEvent.objects.order_by("id").values_list("id", flat=True)
    first = bounds.first()
    if first is None:
        return None
    return first, bounds.last() or first


def _scanned_page(scope: _Scope, text: str, *, before: int | None, after: int | None, size: int) -> EventPage:
    """Search by id windows so one request never reads more than SEARCH_SCAN_LIMIT events."""
    extent = _id_extent()
    if extent is None:
        return EventPage(events=[])
    low = max(extent[0], scope.low or extent[0])
    high = min(extent[1] + 1, scope.high or extent[1] + 1)  # exclusive
    qs = _with_text(scope.queryset, text)
    found: list[AuditEvent] = []
    scanned = 0
    if after is not None:
        cursor = max(after + 1, low)
        while len(found) <= size and cursor < high and scanned < SEARCH_SCAN_LIMIT:
            stop = min(cursor + SEARCH_WINDOW, high)
            found += list(qs.filter(id__gte=cursor, id__lt=stop).order_by("id")[: size + 1 - len(found)])
            scanned += stop - cursor
            cursor = stop
        complete = len(found) > size or cursor >= high
        rows = found[:size][::-1]
        newer = rows[0].pk if len(found) > size else (cursor if cursor < high else None)
        return EventPage(
            events=rows, older=rows[-1].pk if rows else after + 1, newer=newer,
            searched=None if complete else SearchWindow(after + 1, cursor - 1),
        )
    cursor = min(before, high) if before is not None else high
    start = cursor
    while len(found) <= size and cursor > low and scanned < SEARCH_SCAN_LIMIT:
        stop = max(cursor - SEARCH_WINDOW, low)
        found += list(qs.filter(id__gte=stop, id__lt=cursor).order_by("-id")[: size + 1 - len(found)])
        scanned += cursor - stop
        cursor = stop
    complete = len(found) > size or cursor <= low
    rows = found[:size]
    older = rows[-1].pk if len(found) > size else (cursor if cursor > low else None)
    newer = (rows[0].pk if rows else start) if before is not None else None
    return EventPage(
        events=rows, older=older, newer=newer,
        searched=None if complete else SearchWindow(cursor, start - 1),
    )


# --- single events ----------------------------------------------------------------------------


def get_event(*, event_id: int) -> AuditEvent | None:
    return AuditEvent.objects.filter(pk=event_id).first()


@dataclass(frozen=True)
class ChainNeighbours:
    previous: AuditEvent | None
    next: AuditEvent | None


def chain_neighbours(*, event: AuditEvent) -> ChainNeighbours:
    return ChainNeighbours(
        previous=AuditEvent.objects.filter(id__lt=event.pk).order_by("-id").first(),
        next=AuditEvent.objects.filter(id__gt=event.pk).order_by("id").first(),
    )


# --- export -----------------------------------------------------------------------------------


def export_chunks(*, filters: AuditFilter, chunk_size: int = EXPORT_CHUNK) -> Iterator[list[dict[str, Any]]]:
    """Every matching event, newest first, as lists of field dicts read ``chunk_size`` at a time.

    The upper id bound is fixed when the export starts, so events appended meanwhile (the
    export's own ``audit.exported`` among them) do not shift the stream.
    """
    qs = filtered_events(filters=filters)
    ceiling = AuditEvent.objects.aggregate(top=Max("id"))["top"]
    if ceiling is None:
        return
    cursor = ceiling + 1
    columns = ["id", *(f.attname for f in AuditEvent._meta.concrete_fields if f.attname != "id")]
    while True:
        rows = list(qs.filter(id__lt=cursor).order_by("-id").values(*columns)[:chunk_size])
        if not rows:
            return
        yield rows
        cursor = rows[-1]["id"]


# --- the dashboard ----------------------------------------------------------------------------

# What people do in the console, API or CLI (not what clients do through the gateway).
ADMIN_EVENTS = (
    events.TOKEN_ISSUED, events.TOKEN_ROTATED, events.TOKEN_REVOKED, events.APIKEY_CREATED,
    events.APIKEY_REVOKED, events.SERVER_CREATED, events.SERVER_UPDATED, events.TOOL_APPROVED,
    events.TOOL_REJECTED, events.SIGNING_KEY_ROTATED, events.AUDIT_EXPORTED,
)


def recent_admin_actions(*, limit: int = 8) -> list[AuditEvent]:
    """The last changes made by people (token, key, server, tool and signing-key events)."""
    return list(AuditEvent.objects.filter(event__in=ADMIN_EVENTS).order_by("-id")[:limit])


def count_events(*, filters: AuditFilter) -> int:
    """How many events the audit list shows for ``filters`` (the dashboard links to that list)."""
    return filtered_events(filters=filters).count()

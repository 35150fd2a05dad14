"""Query-string filters of the list endpoints (django-filter)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from audit.models import AuditEvent
from audit.selectors import AuditFilter, filtered_events
from gateway.models import SessionBinding
from tokens.models import Token
from tokens.selectors import STATUS_FILTERS, token_list


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, handed on in UTC: PostgreSQL refuses offsets beyond ±15:59, and a time
    that leaves the calendar in UTC (``0001-01-01T00:00+01:00``) is the caller's mistake (400)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("The time is out of range.", code="invalid") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


def _strip_display(value: str, prefix: str) -> str:
    """Accept ``gth_1a2b3c4d…`` or ``1a2b3c4d`` for a token, ``gthk_<id>_…`` or ``<id>`` for a key."""
    value = value.strip().rstrip("…").rstrip(".").rstrip("_")
    return value[len(prefix) :] if value.startswith(prefix) else value


class TokenFilter(filters.FilterSet):
    status = filters.ChoiceFilter(
        choices=[(s, s) for s in STATUS_FILTERS],
        method="filter_status",
        help_text="`active` excludes tokens past their expiry, `expired` includes them; `grace` is a "
        "rotated token still accepted.",
    )
    server = filters.CharFilter(
        method="filter_server", max_length=64, help_text="Tokens that may reach this server."
    )
    name = filters.CharFilter(field_name="name", max_length=100, help_text="Exact name.")
    name_contains = filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100)
    owner = filters.CharFilter(field_name="owner__username", max_length=150, help_text="Owner's username.")
    api_key = filters.CharFilter(method="filter_api_key", max_length=40, help_text="Minted by this key id.")
    prefix = filters.CharFilter(
        method="filter_prefix", max_length=20, help_text="Display prefix, e.g. `gth_1a2b3c4d`."
    )
    jti = filters.CharFilter(field_name="jti", max_length=64)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    expires_before = UtcDateTimeFilter(field_name="expires_at", lookup_expr="lt")
    expires_after = UtcDateTimeFilter(field_name="expires_at", lookup_expr="gte")

    class Meta:
        model = Token
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet[Token], name: str, value: str) -> QuerySet[Token]:
        # The console's definition of each status, so both edges agree.
        return queryset & token_list(status=value)

    def filter_server(self, queryset: QuerySet[Token], name: str, value: str) -> QuerySet[Token]:
        return queryset.filter(scope__has_key=value)

    def filter_api_key(self, queryset: QuerySet[Token], name: str, value: str) -> QuerySet[Token]:
        return queryset.filter(api_key__key_id=_strip_display(value, "gthk_"))

    def filter_prefix(self, queryset: QuerySet[Token], name: str, value: str) -> QuerySet[Token]:
        return queryset.filter(jti__startswith=_strip_display(value, "gth_"))


class SessionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=SessionBinding.Status.choices)
    server = filters.CharFilter(field_name="server__name", max_length=64)
    token = filters.NumberFilter(field_name="token_id", min_value=1, max_value=2**63 - 1)
    token_jti = filters.CharFilter(field_name="token__jti", max_length=64)
    owner = filters.CharFilter(field_name="token__owner__username", max_length=150)

    class Meta:
        model = SessionBinding
        fields: list[str] = []


class AuditEventFilter(filters.FilterSet):
    """The console's audit filters, applied by ``audit.selectors`` (the same code as the console):
    time range, event (``mcp.*`` for a family), outcome, token, owner, server, tool, session,
    client IP and search (text in the detail, or an exact value of those columns); plus the actor."""

    since = UtcDateTimeFilter(help_text="Events at or after this time.")
    until = UtcDateTimeFilter(help_text="Events before this time.")
    event = filters.CharFilter(max_length=64, help_text="e.g. `token.issued`, or `mcp.*` for a family.")
    outcome = filters.ChoiceFilter(choices=AuditEvent.Outcome.choices)
    token = filters.CharFilter(max_length=64, help_text="A jti, or a display prefix such as `gth_1a2b3c4d`.")
    owner = filters.CharFilter(max_length=150)
    server = filters.CharFilter(max_length=64)
    tool = filters.CharFilter(max_length=200)
    session = filters.CharFilter(max_length=64)
    client_ip = filters.CharFilter(max_length=45, validators=[validate_ipv46_address])
    actor = filters.CharFilter(max_length=150)
    q = filters.CharFilter(
        max_length=200,
        help_text="Text anywhere in the detail, or an exact event, owner, server, tool, session, "
        "client IP or `gth_` display prefix.",
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        data = self.form.cleaned_data
        criteria = AuditFilter(
            since=data.get("since"),
            until=data.get("until"),
            **{
                name: data.get(name) or ""
                for name in (
                    "event",
                    "outcome",
                    "token",
                    "owner",
                    "server",
                    "tool",
                    "session",
                    "client_ip",
                    "q",
                )
            },
        )
        # ``queryset`` holds what the caller may see; the selector adds the filters.
        queryset = queryset & filtered_events(filters=criteria)
        if data.get("actor"):
            queryset = queryset.filter(actor=data["actor"])
        return queryset

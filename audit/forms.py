"""The console's audit filter: query parameters in, an ``AuditFilter`` out."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditEvent
from audit.selectors import EVENT_NAMES, AuditFilter


def _event_choices() -> list[tuple[str, str]]:
    families = sorted({name.split(".")[0] for name in EVENT_NAMES})
    return (
        [("", "any event")]
        + [(f"{family}.*", f"{family}.*") for family in families]
        + [(name, name) for name in EVENT_NAMES]
    )


class FlexibleDateTimeField(forms.CharField):
    """ISO 8601 or the browser's ``datetime-local`` value; a time without zone is UTC."""

    def to_python(self, value: str | None) -> datetime | None:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return None
        parsed = parse_datetime(text.replace("Z", "+00:00"))
        if parsed is None:
            raise forms.ValidationError("Use a date and time such as 2026-11-25T14:30 (UTC).")
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        return parsed


class AuditFilterForm(forms.Form):
    since = FlexibleDateTimeField(required=False, label="From (UTC)")
    until = FlexibleDateTimeField(required=False, label="Until (UTC)")
    # A CharField, not a ChoiceField: a name not in events.py (added by another app) still filters.
    event = forms.CharField(required=False, widget=forms.Select(choices=_event_choices()))
    outcome = forms.ChoiceField(required=False, choices=[("", "any outcome"), *AuditEvent.Outcome.choices])
    token = forms.CharField(required=False, max_length=2000, label="Token (jti or gth_ prefix)")
    owner = forms.CharField(required=False, max_length=150)
    server = forms.CharField(required=False, max_length=64)
    tool = forms.CharField(required=False, max_length=200)
    session = forms.CharField(required=False, max_length=64)
    client_ip = forms.CharField(required=False, max_length=64, label="Client IP")
    q = forms.CharField(
        required=False, max_length=200, label="Search",
        help_text=(
            "Text anywhere in the detail, or an exact event, owner, server, tool, session, IP or gth_ prefix."
        ),
    )

    def clean_event(self) -> str:
        value = self.cleaned_data["event"].strip()
        if len(value) > 64:
            raise forms.ValidationError("Event names are at most 64 characters.")
        return value

    def clean_client_ip(self) -> str:
        value = self.cleaned_data["client_ip"].strip()
        if not value:
            return ""
        try:
            address = ipaddress.ip_address(value)
        except ValueError as exc:
            raise forms.ValidationError("Not an IP address.") from exc
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return str(address)

    def clean(self) -> dict[str, object]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after the start.")
        return data

    def to_filter(self) -> AuditFilter:
        """The validated filter (call after ``is_valid()``); invalid fields are left out."""
        data = getattr(self, "cleaned_data", {})
        text = {name: str(data.get(name) or "").strip() for name in (
            "event", "outcome", "token", "owner", "server", "tool", "session", "client_ip", "q")}
        return AuditFilter(since=data.get("since"), until=data.get("until"), **text)

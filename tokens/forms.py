"""Console forms for servers and tokens: input parsing only; the services decide."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from core.exceptions import GatehouseError
from tokens.scope import has_odd_characters, split_names
from tokens.selectors import STATUS_FILTERS
from tokens.ttl import format_ttl, parse_grace, parse_ttl
from upstreams.models import UpstreamServer
from upstreams.tools import ToolListing

_STATUS_LABELS = {"grace": "Rotated, still in grace"}


class TokenFilterForm(forms.Form):
    """The token list's GET filters; invalid values are ignored rather than shown as errors."""

    EXPIRING = (("", "Any time"), ("1", "Within 24 hours"), ("3", "Within 3 days"), ("7", "Within 7 days"))

    q = forms.CharField(label="Search", required=False, help_text="Name, owner, jti or gth_ prefix.")
    owner = forms.ChoiceField(required=False)
    server = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status")] + [(s, _STATUS_LABELS.get(s, s.capitalize())) for s in STATUS_FILTERS],
    )
    expiring = forms.ChoiceField(label="Expiring", required=False, choices=EXPIRING)

    def __init__(self, *args: Any, owners: list[str], servers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = cast(forms.ChoiceField, self.fields["owner"])
        server = cast(forms.ChoiceField, self.fields["server"])
        owner.choices = [("", "Any owner")] + [(o, o) for o in owners]
        server.choices = [("", "Any server")] + [(s, s) for s in servers]

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        days = data.get("expiring")
        return {
            "search": data.get("q", ""),
            "owner": data.get("owner", ""),
            "server": data.get("server", ""),
            "status": data.get("status", ""),
            "expiring_within": timedelta(days=int(days)) if days else None,
        }


def ttl_suggestions() -> list[str]:
    presets = [timedelta(hours=1), *(timedelta(days=d) for d in (1, 7, 30, 90))]
    values = [format_ttl(p) for p in presets if p <= settings.TOKEN_MAX_TTL]
    if settings.TOKEN_ALLOW_NEVER_EXPIRES:
        values.append("never")
    return values


class IssueTokenForm(forms.Form):
    """Name, owner, TTL, and for each enabled server: include it, all tools or only some."""

    MODES = (("all", "All tools"), ("some", "Only the tools selected below"))

    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. laptop or ci-nightly.")
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username")
    ttl = forms.CharField(
        label="Lifetime",
        max_length=20,
        widget=forms.TextInput(attrs={"list": "ttl-suggestions", "autocomplete": "off"}),
    )
    nonce = forms.CharField(widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        servers: list[UpstreamServer],
        listings: Mapping[str, ToolListing],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.servers = servers
        self.listings = listings
        cast(forms.ModelChoiceField, self.fields["owner"]).queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        self.fields["ttl"].initial = format_ttl(settings.TOKEN_DEFAULT_TTL)
        limits = f"Seconds or 30m, 12h, 7d; at most {format_ttl(settings.TOKEN_MAX_TTL)}"
        self.fields["ttl"].help_text = (
            f"{limits}, or never." if settings.TOKEN_ALLOW_NEVER_EXPIRES else f"{limits}."
        )
        for server in servers:
            listing = listings.get(server.name)
            self.fields[f"include__{server.name}"] = forms.BooleanField(
                label=f"Allow {server.name}", required=False
            )
            self.fields[f"mode__{server.name}"] = forms.ChoiceField(
                label=f"Tools on {server.name}",
                choices=self.MODES,
                initial="all",
                required=False,  # missing means all tools
                widget=forms.RadioSelect,
            )
            if listing is not None and listing.reachable and listing.tools:
                self.fields[f"tools__{server.name}"] = forms.MultipleChoiceField(
                    label=f"Tools offered by {server.name}",
                    required=False,
                    choices=[(t.name, t.name) for t in listing.tools],
                    widget=forms.CheckboxSelectMultiple,
                )
            self.fields[f"extra__{server.name}"] = forms.CharField(
                label=f"Other tool names for {server.name}",
                required=False,
                max_length=2000,
                help_text="Comma-separated, for tools the upstream does not list right now.",
            )

    def server_rows(self) -> list[dict[str, Any]]:
        """Bound fields grouped per server, for the template."""
        rows = []
        for server in self.servers:
            name = server.name
            listing = self.listings.get(name)
            tools = self[f"tools__{name}"] if f"tools__{name}" in self.fields else None
            descriptions = {t.name: t.description for t in listing.tools} if listing else {}
            rows.append(
                {
                    "server": server,
                    "listing": listing,
                    "include": self[f"include__{name}"],
                    "mode": self[f"mode__{name}"],
                    "tools": tools,
                    "tool_items": [
                        {"widget": w, "description": descriptions.get(w.data["value"], "")} for w in tools
                    ]
                    if tools is not None
                    else [],
                    "extra": self[f"extra__{name}"],
                }
            )
        return rows

    def clean_ttl(self) -> timedelta | None:
        try:
            return parse_ttl(self.cleaned_data["ttl"])
        except GatehouseError as exc:
            raise ValidationError(exc.detail) from exc

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        scope: dict[str, list[str] | None] = {}
        for server in self.servers:
            name = server.name
            if not data.get(f"include__{name}"):
                continue
            if data.get(f"mode__{name}") != "some":
                scope[name] = None
                continue
            extra = split_names(data.get(f"extra__{name}", ""))
            odd = next((t for t in extra if ":" in t or has_odd_characters(t)), None)
            if odd is not None:
                # A colon would be read as ``server:tool`` on the command line; here it is one name.
                self.add_error(
                    f"extra__{name}",
                    f"{odd!r} is not a tool name: list only {name}'s tool names, separated by commas.",
                )
                continue
            tools = set(data.get(f"tools__{name}") or []) | set(extra)
            if not tools:
                self.add_error(f"extra__{name}", f"Pick at least one tool for {name}, or allow all tools.")
                continue
            scope[name] = sorted(tools)
        if not scope and not self.errors:
            raise ValidationError("Allow at least one server.")
        data["scope"] = scope
        return data


class RotateTokenForm(forms.Form):
    GRACE = (("0", "None: the old token stops now"), ("10m", "10 minutes"), ("1h", "1 hour"),
             ("1d", "1 day"), ("7d", "7 days"))

    grace = forms.ChoiceField(
        label="Grace period",
        choices=GRACE,
        initial="0",
        help_text="How long the old token keeps working next to its successor.",
    )

    def clean_grace(self) -> timedelta:
        return parse_grace(self.cleaned_data["grace"])


class RevokeTokenForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        required=False,
        help_text="Kept in the audit log, e.g. laptop lost, left the team.",
    )

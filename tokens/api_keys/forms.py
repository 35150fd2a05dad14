"""Console form for creating an API key: input parsing only; ``tokens.api_keys`` decides."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from core.exceptions import GatehouseError
from tokens.exceptions import InvalidTokenRequest
from tokens.scope import TokenScope, split_names
from tokens.ttl import parse_ttl
from upstreams.models import UpstreamServer


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. github-actions-deploy.")
    owner = forms.CharField(
        max_length=150,
        help_text="Username the key acts as: tokens it mints are owned by this user, and it sees only "
        "their tokens unless they are staff.",
    )
    servers = forms.MultipleChoiceField(
        label="Scope ceiling: servers",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Servers the key may mint tokens for. None ticked: any server.",
    )
    tools = forms.CharField(
        label="Scope ceiling: tools",
        required=False,
        max_length=2000,
        help_text="Comma-separated tools the key may grant on the ticked servers; 'server:tool' pins "
        "one to a server. Empty: all tools of those servers.",
    )
    max_ttl = forms.CharField(
        label="Maximum token TTL",
        initial="1h",
        max_length=20,
        help_text="Longest token the key may mint: 3600, 30m, 1h, 7d.",
    )
    expires_in = forms.CharField(
        label="Key expires in",
        required=False,
        max_length=20,
        help_text="Optional lifetime of the key itself, e.g. 90d. Empty: until revoked.",
    )
    nonce = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, servers: list[UpstreamServer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["servers"]).choices = [(s.name, s.name) for s in servers]

    def clean_owner(self) -> Any:
        username = self.cleaned_data["owner"].strip()
        owner = get_user_model().objects.filter(username=username, is_active=True).first()
        if owner is None:
            raise ValidationError(f"No active user named {username!r}.")
        return owner

    def clean_max_ttl(self) -> timedelta:
        try:
            ttl = parse_ttl(self.cleaned_data["max_ttl"])
        except GatehouseError as exc:
            raise ValidationError(exc.detail) from exc
        if ttl is None:
            raise ValidationError("An API key cannot mint tokens that never expire; give a duration.")
        return ttl

    def clean_expires_in(self) -> timedelta | None:
        text = self.cleaned_data["expires_in"].strip()
        if not text:
            return None
        try:
            return parse_ttl(text)
        except GatehouseError as exc:
            raise ValidationError(exc.detail) from exc

    def scope_ceiling(self) -> TokenScope | None:
        """The ceiling from the ticked servers and the tools line (None: any server)."""
        servers = self.cleaned_data.get("servers") or []
        tools = split_names(self.cleaned_data.get("tools", ""))
        if not servers:
            if tools:
                raise InvalidTokenRequest("Tick the servers the tools belong to.")
            return None
        return TokenScope.from_selection(servers=servers, tools=tools)


class ApiKeyRevokeForm(forms.Form):
    revoke_tokens = forms.BooleanField(
        label="Also revoke the tokens this key minted that still work",
        required=False,
        help_text="Do this if the key leaked: tokens minted with it may be in the wrong hands too.",
    )

"""Console forms for trusted issuers: what a person types, checked into service arguments."""

from __future__ import annotations

from typing import Any

from django import forms

from core.exceptions import GatehouseError
from tokens.issuers.claim_rules import parse_rule
from tokens.issuers.models import ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS
from tokens.issuers.services import IssuerSettings
from tokens.scope import TokenScope, split_names
from tokens.ttl import parse_ttl


class IssuerForm(forms.Form):
    name = forms.SlugField(max_length=50, help_text="Short name; its subjects' tokens are owned by NAME:sub.")
    issuer = forms.URLField(max_length=500, label="Issuer URL", assume_scheme="https",
                            help_text="The exact iss, e.g. https://token.actions.githubusercontent.com")
    audience = forms.CharField(max_length=500, help_text="The aud its tokens must carry.")
    servers = forms.CharField(max_length=2000, help_text="Servers its tokens may reach, comma separated.")
    tools = forms.CharField(max_length=2000, required=False,
                            help_text="Allowed tools, comma separated ('server:tool' pins one); empty: all.")
    rules = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One CLAIM=VALUE per line, all must hold, e.g. repository=acme/app",
    )
    max_ttl = forms.CharField(initial="1h", label="Max TTL", help_text="Longest life of a minted token.")
    algorithms = forms.MultipleChoiceField(
        choices=[(alg, alg) for alg in ASYMMETRIC_ALGORITHMS], initial=DEFAULT_ALGORITHMS,
        widget=forms.CheckboxSelectMultiple,
    )
    direct = forms.BooleanField(required=False, label="Accept its JWTs at the gateway directly")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            if "servers" in data:
                data["scope"] = TokenScope.from_selection(
                    servers=split_names(data["servers"]), tools=split_names(data.get("tools", ""))
                )
            data["claim_rules"] = [parse_rule(line.strip()) for line in data.get("rules", "").splitlines()
                                   if line.strip()]
            data["max_ttl_delta"] = parse_ttl(data.get("max_ttl", ""), name="max TTL")
        except GatehouseError as exc:
            raise forms.ValidationError(exc.detail) from exc
        if data["max_ttl_delta"] is None:
            raise forms.ValidationError("The max TTL cannot be 'never'.")
        return data

    def issuer_settings(self) -> IssuerSettings:
        data = self.cleaned_data
        return IssuerSettings(
            name=data["name"], issuer=data["issuer"], audience=data["audience"], scope=data["scope"],
            rules=data["claim_rules"], max_ttl=data["max_ttl_delta"], direct=data["direct"],
            algorithms=data["algorithms"],
        )


class SubjectForm(forms.Form):
    subject = forms.CharField(
        max_length=255, help_text="Its sub claim, e.g. repo:acme/app:ref:refs/heads/main."
    )

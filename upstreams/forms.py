"""Console forms for upstream servers: input parsing only; ``upstreams.services`` decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from core.exceptions import GatehouseError
from upstreams import transports
from upstreams.headers import parse_header_lines
from upstreams.models import DEFAULT_IDENTITY_HEADER
from upstreams.stdio.command import (
    DEFAULT_MAX_PROCESSES,
    ISOLATIONS,
    MAX_COMMAND_LENGTH,
    MAX_PROCESSES_LIMIT,
    check_program_exists,
    parse_env_lines,
)
from upstreams.url import validate_upstream_url
from upstreams.user_credentials import OAuthProvider, UserCredentialSettings

HEADERS_HELP = (
    "One per line, as Name: value, e.g. Authorization: Bearer upstream-secret. Added to every "
    "request the gateway sends upstream. Values are stored encrypted and never shown again."
)


IDENTITY_HELP = (
    "Every request to this server then carries a JWT signed by Gatehouse (verifiable with "
    "/.well-known/jwks.json) saying who calls: sub = the token's owner, aud = the upstream URL, "
    "scope = the token's tools. A client-sent header of that name never reaches the upstream."
)
IDENTITY_HEADER_HELP = (
    f"{DEFAULT_IDENTITY_HEADER} sends Bearer <jwt> (what MCP SDK servers verify); any other header "
    "gets the bare JWT. Must differ from the server's own headers."
)


def _identity_fields() -> dict[str, forms.Field]:
    return {
        "forward_identity": forms.BooleanField(
            label="Forward the caller's identity", required=False, help_text=IDENTITY_HELP
        ),
        "identity_header": forms.CharField(
            label="Identity header", max_length=64, initial=DEFAULT_IDENTITY_HEADER, required=False,
            help_text=IDENTITY_HEADER_HELP,
        ),
    }


def _clean_identity_header(value: str | None) -> str:
    return (value or "").strip() or DEFAULT_IDENTITY_HEADER


PIN_TOOLS_HELP = (
    "Tool pinning: clients see and call only tools whose current definition an administrator "
    "approved; a changed or new tool stays hidden until approved on the server page."
)


def _pin_tools_field() -> forms.BooleanField:
    return forms.BooleanField(label="Pin tools", required=False, help_text=PIN_TOOLS_HELP)


STDIO_COMMAND_HELP = (
    'stdio servers only: the command Gatehouse\'s stdio runner starts, e.g. "uvx mcp-server-fetch" '
    "(split like a shell would; no shell runs it). Put secrets in the environment, not here."
)
STDIO_ENV_HELP = (
    "stdio servers only: one NAME=value per line, passed to the process. Values are stored encrypted "
    "and never shown again."
)


def _stdio_fields() -> dict[str, forms.Field]:
    return {
        "command": forms.CharField(
            label="Command (stdio)", required=False, max_length=MAX_COMMAND_LENGTH,
            widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
            help_text=STDIO_COMMAND_HELP,
        ),
        "env": forms.CharField(
            label="Environment (stdio)", required=False,
            widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
            help_text=STDIO_ENV_HELP,
        ),
        "cwd": forms.CharField(label="Working directory (stdio)", required=False, max_length=500),
        "isolation": forms.ChoiceField(
            label="Isolation (stdio)", choices=[(i, i) for i in ISOLATIONS], initial="shared", required=False,
            help_text="shared: one process serves every session; session: one process per MCP session.",
        ),
        "max_processes": forms.IntegerField(
            label="Max processes (stdio, session isolation)", min_value=1, max_value=MAX_PROCESSES_LIMIT,
            initial=DEFAULT_MAX_PROCESSES, required=False,
        ),
    }


class _StdioFieldsMixin(forms.Form):
    """The stdio settings, parsed; whether they apply is the transport's (``upstreams.services``)."""

    # Adding a server checks that its program exists; editing one leaves it to the runner's state.
    check_program = False

    def clean_env(self) -> dict[str, str]:
        try:
            return parse_env_lines(self.cleaned_data.get("env", "").splitlines())
        except GatehouseError as exc:
            raise ValidationError(exc.detail) from exc

    def clean_isolation(self) -> str:
        return self.cleaned_data.get("isolation") or "shared"

    def clean_max_processes(self) -> int:
        return self.cleaned_data.get("max_processes") or DEFAULT_MAX_PROCESSES

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        hosted = transports.get(data.get("transport") or transports.DEFAULT.name).hosted
        if hosted:
            data["url"] = ""
            checkable = "command" not in self.errors and "env" not in self.errors
            if self.check_program and data.get("command") and checkable:
                try:
                    check_program_exists(command=data["command"], env=data.get("env") or {},
                                         cwd=(data.get("cwd") or "").strip())
                except GatehouseError as exc:
                    self.add_error("command", exc.detail)
        elif not data.get("url") and "url" not in self.errors:
            self.add_error("url", "An upstream URL is required (or the stdio transport and a command).")
        return data


def _parse_headers(text: str) -> dict[str, str]:
    try:
        return parse_header_lines(text.splitlines())
    except GatehouseError as exc:
        raise ValidationError(exc.detail) from exc


class _UserCredentialFieldsMixin(forms.Form):
    """Connected accounts (``upstreams.user_credentials``): what each caller brings; the client
    secret is a password field that is never rendered back."""

    user_credential = forms.CharField(
        label="Each caller's own credential", required=False, max_length=80,
        help_text="Empty: none. header:NAME: each person pastes their own key for that header on My "
        "access. oauth: each person connects their account at the upstream's OAuth provider (below).",
    )
    oauth_authorize_url = forms.CharField(label="OAuth authorize URL", required=False, max_length=500)
    oauth_token_url = forms.CharField(label="OAuth token URL", required=False, max_length=500)
    oauth_client_id = forms.CharField(label="OAuth client id", required=False, max_length=200)
    oauth_client_secret = forms.CharField(
        label="OAuth client secret", required=False, max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Never shown again; when editing, leave it empty to keep the stored one.",
    )
    oauth_scopes = forms.CharField(label="OAuth scopes", required=False, max_length=500)
    oauth_header = forms.CharField(label="OAuth token header", required=False, max_length=64,
                                   help_text="Default Authorization (Bearer).")

    def user_credential_settings(self) -> UserCredentialSettings:
        data = self.cleaned_data
        oauth = {o: data.get(f"oauth_{o}", "").strip()
                 for o in ("authorize_url", "token_url", "client_id", "client_secret", "scopes")}
        return UserCredentialSettings(
            spec=data.get("user_credential", "").strip(),
            oauth=OAuthProvider(**oauth) if any(oauth.values()) else None,
            oauth_header=data.get("oauth_header", "").strip(),
        )


class ServerCreateForm(_StdioFieldsMixin, _UserCredentialFieldsMixin):
    check_program = True
    name = forms.SlugField(
        max_length=64,
        help_text="Lowercase letters, digits, - and _. Clients reach it at /mcp/<name>/ (/sse/<name>/ for "
        "legacy SSE).",
    )
    url = forms.CharField(
        label="Upstream URL",
        max_length=500,
        required=False,
        validators=[validate_upstream_url],
        help_text="The upstream MCP endpoint, e.g. http://127.0.0.1:3001/mcp (or …/sse for legacy SSE).",
    )
    transport = forms.ChoiceField(choices=transports.choices, initial=transports.DEFAULT.name)
    description = forms.CharField(max_length=200, required=False)
    headers = forms.CharField(
        label="Upstream headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text=HEADERS_HELP,
    )
    forward_identity = _identity_fields()["forward_identity"]
    identity_header = _identity_fields()["identity_header"]
    pin_tools = _pin_tools_field()
    command = _stdio_fields()["command"]
    env = _stdio_fields()["env"]
    cwd = _stdio_fields()["cwd"]
    isolation = _stdio_fields()["isolation"]
    max_processes = _stdio_fields()["max_processes"]

    def clean_headers(self) -> dict[str, str]:
        return _parse_headers(self.cleaned_data.get("headers", ""))

    def clean_identity_header(self) -> str:
        return _clean_identity_header(self.cleaned_data.get("identity_header"))


class ServerEditForm(_StdioFieldsMixin, _UserCredentialFieldsMixin):
    url = forms.CharField(
        label="Upstream URL",
        max_length=500,
        required=False,
        validators=[validate_upstream_url],
        help_text="Credentials in the URL are shown as ***; leave it as it is to keep them, or type the "
        "whole URL again to change it.",
    )
    transport = forms.ChoiceField(choices=transports.choices)
    description = forms.CharField(max_length=200, required=False)
    headers = forms.CharField(
        label="Add or replace headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Same format as when adding. A header with an existing name replaces it. " + HEADERS_HELP,
    )
    remove_headers = forms.MultipleChoiceField(
        label="Remove headers", required=False, widget=forms.CheckboxSelectMultiple
    )
    forward_identity = _identity_fields()["forward_identity"]
    identity_header = _identity_fields()["identity_header"]
    pin_tools = _pin_tools_field()
    command = _stdio_fields()["command"]
    env = _stdio_fields()["env"]
    remove_env = forms.MultipleChoiceField(
        label="Remove environment entries", required=False, widget=forms.CheckboxSelectMultiple
    )
    cwd = _stdio_fields()["cwd"]
    isolation = _stdio_fields()["isolation"]
    max_processes = _stdio_fields()["max_processes"]

    def __init__(
        self, *args: Any, header_names: list[str], env_names: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        for field, names in (("remove_headers", header_names), ("remove_env", env_names)):
            remove = cast(forms.MultipleChoiceField, self.fields[field])
            remove.choices = [(n, n) for n in names]
            if not names:
                del self.fields[field]

    def clean_headers(self) -> dict[str, str]:
        return _parse_headers(self.cleaned_data.get("headers", ""))

    def clean_identity_header(self) -> str:
        return _clean_identity_header(self.cleaned_data.get("identity_header"))

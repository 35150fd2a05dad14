"""Request and response shapes of the REST API. No business rules here: they live in services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent
from core.permissions import can_read_console
from gateway.models import SessionBinding
from tokens.exceptions import InvalidTokenRequest
from tokens.models import Token
from tokens.snippets import mcp_url
from tokens.ttl import parse_ttl
from upstreams.models import UpstreamServer
from upstreams.selectors import server_summary, server_transports
from upstreams.url import redacted_url

_DURATION_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 999_999_999, "description": "Seconds."},
        {
            "type": "string",
            "pattern": r"^[0-9]{1,9}[smhdw]?$",
            "description": "A duration: seconds (`3600`) or with a unit (`30m`, `1h`, `7d`, `2w`).",
        },
    ]
}




@extend_schema_field(_DURATION_SCHEMA)
class DurationField(serializers.Field):
    """Seconds as an integer, or a string such as ``30m``, ``1h``, ``7d``."""

    default_error_messages = {"invalid": "Give seconds or a duration like 30m, 1h, 7d."}

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> timedelta:
        if self.allow_zero and data in (0, "0"):
            return timedelta(0)
        if not isinstance(data, (int, str)) or isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and data.strip().lower() == "never":
            raise serializers.ValidationError("A token from the API always expires; give a duration.")
        try:
            ttl = parse_ttl(data)
        except (InvalidTokenRequest, OverflowError) as exc:
            raise serializers.ValidationError(getattr(exc, "detail", "Duration out of range.")) from exc
        if ttl is None or ttl.total_seconds() > 999_999_999:
            raise serializers.ValidationError("Duration out of range.")
        return ttl

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable machine-readable code, e.g. `scope_ceiling_exceeded`.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "fields" cannot be declared as a class attribute: it is the Serializer's own property.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            required=False, help_text="Validation errors per request field (only for `invalid_request`)."
        )
        return fields


# --- tokens -------------------------------------------------------------------------------------


class MintTokenRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="Shown in the console and the audit log.")
    servers = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        min_length=1,
        max_length=100,
        help_text="Upstream servers the token may reach.",
    )
    tools = serializers.DictField(
        child=serializers.ListField(
            child=serializers.CharField(max_length=200), max_length=1000, allow_null=True
        ),
        required=False,
        help_text="Per-server tool allowlist. A server missing here (or null) allows all of its tools.",
    )
    ttl = DurationField(
        required=False,
        help_text="Lifetime; default the smaller of the gateway default and the API key's maximum.",
    )

    def validate_servers(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A server is listed twice.")
        return value


class RotateTokenRequestSerializer(serializers.Serializer):
    grace = DurationField(
        allow_zero=True,
        required=False,
        default=timedelta(0),
        help_text="How long the old token keeps working (default 0: it stops now).",
    )


class RevokeTokenRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class TokenSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    status = serializers.ChoiceField(
        choices=Token.Status.choices,
        source="effective_status",
        read_only=True,
        help_text="An active token past its expiry reads as `expired`.",
    )
    servers = serializers.SerializerMethodField()
    scope = serializers.SerializerMethodField()
    api_key = serializers.SerializerMethodField()
    successor: serializers.PrimaryKeyRelatedField[Token] = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True
    )
    mcp_urls = serializers.SerializerMethodField()
    oauth_client = serializers.SerializerMethodField()

    class Meta:
        model = Token
        fields = [
            "id",
            "name",
            "display_prefix",
            "jti",
            "owner",
            "status",
            "servers",
            "scope",
            "mcp_urls",
            "created_at",
            "created_by",
            "expires_at",
            "last_used_at",
            "grace_until",
            "successor",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
            "api_key",
            "oauth_client",
        ]
        read_only_fields = fields

    def get_servers(self, token: Token) -> list[str]:
        return sorted(token.scope or {})

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}, "nullable": True},
            "description": "Server name to its tool allowlist; null means every tool of that server.",
            "example": {"demo": ["echo"]},
        }
    )
    def get_scope(self, token: Token) -> dict[str, list[str] | None]:
        return token.scope

    @extend_schema_field(
        {"type": "string", "nullable": True, "description": "Display form of the API key that minted it."}
    )
    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"client_id": {"type": "string"}, "name": {"type": "string"}},
            "description": "The OAuth client the token was issued to, when it came through /oauth/token.",
        }
    )
    def get_oauth_client(self, token: Token) -> dict[str, str] | None:
        connection = token.oauth_connection
        if connection is None:
            return None
        return {"client_id": connection.client.client_id, "name": connection.client.name}

    def get_api_key(self, token: Token) -> str | None:
        return token.api_key.display_prefix if token.api_key_id and token.api_key else None

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {"type": "string", "format": "uri"},
            "description": "Gateway URL of each server in scope.",
        }
    )
    def get_mcp_urls(self, token: Token) -> dict[str, str]:
        transports = server_transports(names=sorted(token.scope or {}))
        return {name: mcp_url(server=name, transport=transport) for name, transport in transports.items()}


class MintedTokenSerializer(TokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The full `gth_` token. Shown in this response only; store it now."
    )

    class Meta(TokenSerializer.Meta):
        fields = ["token", *TokenSerializer.Meta.fields]
        read_only_fields = fields


# --- servers, sessions, audit -------------------------------------------------------------------


class ServerSerializer(serializers.ModelSerializer):
    mcp_url = serializers.SerializerMethodField()
    upstream_url = serializers.SerializerMethodField()
    stdio = serializers.SerializerMethodField()
    user_credential = serializers.SerializerMethodField()

    class Meta:
        model = UpstreamServer
        fields = [
            "name",
            "description",
            "transport",
            "enabled",
            "pin_tools",
            "mcp_url",
            "upstream_url",
            "stdio",
            "forward_identity",
            "identity_header",
            "user_credential",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": "Connected accounts: the kind of each caller's own credential (header, oauth) "
            "and the header it goes in; null when the server's own headers are all it takes.",
            "properties": {"kind": {"type": "string"}, "header": {"type": "string"}},
        }
    )
    def get_user_credential(self, server: UpstreamServer) -> dict[str, str] | None:
        kind = server.user_credential_kind
        return {"kind": kind.name, "header": server.user_credential_header} if kind else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_mcp_url(self, server: UpstreamServer) -> str:
        return mcp_url(server=server.name, transport=server.transport)

    @extend_schema_field(
        {
            "type": "string",
            "nullable": True,
            "description": "Upstream endpoint with credentials masked; staff and auditors only.",
        }
    )
    def get_upstream_url(self, server: UpstreamServer) -> str | None:
        if not self._reader() or server.is_stdio:
            return None
        return redacted_url(server.url)

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": "A stdio server's command, environment names (never values), isolation and "
            "the stdio runner's last report; staff and auditors only, null for HTTP servers.",
        }
    )
    def get_stdio(self, server: UpstreamServer) -> dict[str, object] | None:
        if not self._reader() or not server.is_stdio:
            return None
        summary = server_summary(server=server)
        status = summary.stdio
        return {
            "command": server.command,
            "env_names": summary.env_names,
            "cwd": server.cwd,
            "isolation": server.isolation,
            "max_processes": server.max_processes,
            "state": summary.stdio_state,
            "processes": status.processes if status else 0,
            "last_error": status.last_error if status else "",
        }

    def _reader(self) -> bool:
        request = self.context.get("request")
        return request is not None and can_read_console(request.user)


class SessionSerializer(serializers.ModelSerializer):
    server = serializers.CharField(source="server.name", read_only=True)
    token = serializers.IntegerField(source="token_id", read_only=True)
    token_display_prefix = serializers.CharField(source="token.display_prefix", read_only=True)
    owner = serializers.CharField(source="token.owner.get_username", read_only=True)

    class Meta:
        model = SessionBinding
        fields = [
            "id",
            "server",
            "token",
            "token_display_prefix",
            "owner",
            "status",
            "protocol_version",
            "transport",
            "client_ip",
            "user_agent",
            "created_at",
            "last_seen_at",
            "ended_at",
            "end_reason",
        ]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    detail = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "event",
            "actor",
            "token_jti",
            "owner",
            "server",
            "tool",
            "session_id",
            "client_ip",
            "user_agent",
            "outcome",
            "status",
            "latency_ms",
            "detail",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields

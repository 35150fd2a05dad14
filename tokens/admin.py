"""Django admin: read-only views of servers, signing keys and tokens.

Every change goes through the console or the commands, which validate, encrypt and audit; the
admin never shows a secret (no private keys, no header values, no token strings).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tokens.models import SigningKey, Token, UpstreamServer
from tokens.selectors import server_header_names
from tokens.upstream_url import redacted_url


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UpstreamServer)
class UpstreamServerAdmin(ReadOnlyAdmin):
    list_display = ("name", "upstream", "transport", "enabled", "updated_at")
    list_filter = ("transport", "enabled")
    search_fields = ("name", "description")
    fields = ("name", "upstream", "transport", "description", "header_names", "enabled", "created_at",
              "updated_at")
    readonly_fields = fields

    @admin.display(description="Upstream URL")
    def upstream(self, obj: UpstreamServer) -> str:
        return redacted_url(obj.url)

    @admin.display(description="Header names (values hidden)")
    def header_names(self, obj: UpstreamServer) -> str:
        names, readable = server_header_names(server=obj)
        return ", ".join(names) if readable else "(cannot be decrypted)"


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ("kid", "algorithm", "status", "created_at", "retired_at")
    list_filter = ("algorithm", "status")
    fields = ("kid", "algorithm", "status", "public_key_pem", "created_at", "retired_at")
    readonly_fields = fields


@admin.register(Token)
class TokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "display_prefix", "owner", "status", "expires_at", "last_used_at", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "jti", "owner__username")
    list_select_related = ("owner",)
    fields = (
        "name", "display_prefix", "jti", "owner", "scope", "status", "created_at", "created_by",
        "expires_at", "last_used_at", "grace_until", "successor", "revoked_at", "revoked_by",
        "revoke_reason", "signing_key", "api_key",
    )
    readonly_fields = fields

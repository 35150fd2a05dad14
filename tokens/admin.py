"""Django admin: read-only views of signing keys and tokens (servers: ``upstreams.admin``).

Every change goes through the console or the commands, which validate, encrypt and audit; the
admin never shows a secret (no private keys, no header values, no token strings).
"""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from tokens.models import SigningKey, Token


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

"""Django admin: a read-only view of upstream servers; it never shows a credential."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from upstreams.models import ApprovedTool, ToolChange, UpstreamServer
from upstreams.selectors import server_header_names
from upstreams.url import redacted_url


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


@admin.register(ApprovedTool)
class ApprovedToolAdmin(ReadOnlyAdmin):
    list_display = ("server", "name", "hash", "approved_at", "approved_by")
    list_filter = ("server",)
    search_fields = ("name",)


@admin.register(ToolChange)
class ToolChangeAdmin(ReadOnlyAdmin):
    list_display = ("server", "name", "status", "first_seen_at", "decided_by")
    list_filter = ("status", "server")
    search_fields = ("name",)

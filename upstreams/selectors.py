"""Reads of upstream servers for the console, commands and API: never a credential's value."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from upstreams import transports
from upstreams.models import ApprovedTool, ToolChange, UpstreamServer
from upstreams.target import target_of
from upstreams.url import redacted_url


@dataclass(frozen=True)
class ServerSummary:
    """What the console shows about an upstream: never a header value."""

    server: UpstreamServer
    display_url: str
    header_names: list[str]
    headers_readable: bool


def server_header_names(*, server: UpstreamServer) -> tuple[list[str], bool]:
    """Header names and whether they could be decrypted (a changed key makes them unreadable)."""
    try:
        return sorted(target_of(server).headers), True
    except RuntimeError:
        return [], False


def server_summary(*, server: UpstreamServer) -> ServerSummary:
    names, readable = server_header_names(server=server)
    return ServerSummary(
        server=server, display_url=redacted_url(server.url), header_names=names, headers_readable=readable
    )


def server_list(*, include_disabled: bool = True) -> list[ServerSummary]:
    qs = UpstreamServer.objects.order_by("name")
    if not include_disabled:
        qs = qs.filter(enabled=True)
    return [server_summary(server=s) for s in qs]


def enabled_servers() -> QuerySet[UpstreamServer]:
    return UpstreamServer.objects.filter(enabled=True).order_by("name")


def get_server(*, name: str) -> UpstreamServer | None:
    return UpstreamServer.objects.filter(name=name).first()


def server_transports(*, names: list[str]) -> dict[str, str]:
    """Each named server's transport (a server missing from the database counts as the default)."""
    known = dict(UpstreamServer.objects.filter(name__in=names).values_list("name", "transport"))
    return {name: known.get(name, transports.DEFAULT.name) for name in names}


def all_servers() -> QuerySet[UpstreamServer]:
    return UpstreamServer.objects.order_by("name")


def approved_tools(*, server: UpstreamServer) -> QuerySet[ApprovedTool]:
    return ApprovedTool.objects.filter(server=server).order_by("name")


def pending_tool_changes(*, server: UpstreamServer) -> QuerySet[ToolChange]:
    """Definitions seen on ``server`` that wait for a decision, oldest first."""
    return ToolChange.objects.filter(server=server, status=ToolChange.Status.PENDING).order_by(
        "first_seen_at", "name"
    )

"""Reads of upstream servers for the console, commands and API: never a credential's value."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType

from django.db.models import QuerySet
from django.utils import timezone

from core import encryption
from upstreams import transports
from upstreams.exceptions import InvalidServerConfig
from upstreams.models import ApprovedTool, StdioStatus, ToolChange, UpstreamServer
from upstreams.stdio.command import Isolation, StdioCommand, parse_command
from upstreams.url import redacted_url

# How long after a stdio server is added or changed the console waits for the runner's first report
# before saying none comes (the runner polls every 2 s and reports every 2 s).
STDIO_FIRST_REPORT_SECONDS = 30

logger = logging.getLogger("gatehouse.stdio")


def command_of(server: UpstreamServer) -> StdioCommand:
    """The decrypted command of a stdio server. Raises ``RuntimeError`` if it cannot be decrypted."""
    env = encryption.decrypt_json(server.env_encrypted) if server.env_encrypted else {}
    isolation: Isolation = "session" if server.isolation == "session" else "shared"
    return StdioCommand(
        server=server.name,
        argv=parse_command(server.command),
        env=MappingProxyType({str(k): str(v) for k, v in env.items()}),
        cwd=server.cwd,
        isolation=isolation,
        max_processes=server.max_processes,
    )


@dataclass(frozen=True)
class ServerSummary:
    """What the console shows about an upstream: never a header value."""

    server: UpstreamServer
    display_url: str
    header_names: list[str]
    headers_readable: bool
    # stdio servers: the names of the environment entries (never their values), and what the
    # runner last reported (None: never reported, or too long ago to believe).
    env_names: list[str]
    stdio: StdioStatus | None
    # A stdio server added or changed moments ago that no runner reports yet: "starting", not an
    # alarm (the runner picks changes up within a poll, then reports every 2 s).
    stdio_awaited: bool = False

    @property
    def stdio_state(self) -> str:
        """The state to show: the runner's report, "starting" while awaited, else "not reported"."""
        if self.stdio is not None:
            return self.stdio.state
        return "starting" if self.stdio_awaited else "not reported"

    @property
    def stdio_settling(self) -> bool:
        """Whether the runner's state for it should change by itself soon (the page refreshes)."""
        if not self.server.is_stdio or not self.server.enabled:
            return False
        if self.stdio is None:
            return self.stdio_awaited
        return self.stdio.state in (StdioStatus.State.STARTING, StdioStatus.State.RESTARTING)


def _secret_names(ciphertext: str) -> tuple[list[str], bool]:
    """The keys of an encrypted JSON object, and whether it could be decrypted at all."""
    if not ciphertext:
        return [], True
    try:
        return sorted(encryption.decrypt_json(ciphertext)), True
    except RuntimeError:
        return [], False


def server_header_names(*, server: UpstreamServer) -> tuple[list[str], bool]:
    """Header names and whether they could be decrypted (a changed key makes them unreadable)."""
    return _secret_names(server.headers_encrypted)


def server_summary(*, server: UpstreamServer) -> ServerSummary:
    names, readable = server_header_names(server=server)
    env_names, env_readable = _secret_names(server.env_encrypted)
    status = stdio_status(server=server) if server.is_stdio else None
    awaited = (server.is_stdio and server.enabled and status is None
               and (timezone.now() - server.updated_at).total_seconds() <= STDIO_FIRST_REPORT_SECONDS)
    return ServerSummary(
        server=server, display_url=redacted_url(server.url), header_names=names,
        headers_readable=readable and env_readable, env_names=env_names, stdio=status,
        stdio_awaited=awaited,
    )


def stdio_status(*, server: UpstreamServer) -> StdioStatus | None:
    """The runner's current report on a stdio server, or None when no runner reports it."""
    status = StdioStatus.objects.filter(server=server).first()
    return status if status is not None and status.is_current(timezone.now()) else None


def stdio_states() -> dict[str, str]:
    """Every enabled stdio server's reported state, ``"not reported"`` when no runner reports it."""
    now = timezone.now()
    names = UpstreamServer.objects.filter(enabled=True, transport=transports.STDIO.name).values_list(
        "name", flat=True
    )
    reported = {
        row.server.name: row.state
        for row in StdioStatus.objects.select_related("server").filter(server__name__in=list(names))
        if row.is_current(now)
    }
    return {name: reported.get(name, "not reported") for name in names}


def stdio_commands() -> tuple[dict[str, StdioCommand], dict[str, str]]:
    """What the runner should host: every enabled stdio server's command, and those it cannot run.

    A server whose environment cannot be decrypted (the encryption key changed) is in the second
    mapping with the reason, so the runner reports it failed instead of starting it without.
    """
    commands: dict[str, StdioCommand] = {}
    broken: dict[str, str] = {}
    for server in UpstreamServer.objects.filter(enabled=True, transport=transports.STDIO.name):
        try:
            commands[server.name] = command_of(server)
        except RuntimeError:
            broken[server.name] = (
                "its environment cannot be decrypted (was GATEHOUSE_ENCRYPTION_KEY changed?)"
            )
        except InvalidServerConfig as exc:
            broken[server.name] = exc.detail
    return commands, broken


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

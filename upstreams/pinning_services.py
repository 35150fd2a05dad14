"""Tool pinning workflows: enable, offer, approve, reject, and what the gateway saw. Each audited.

The pure part (definitions, canonical form, hashes, diffs) is ``upstreams.pinning``. A pending
``ToolChange`` is unique per (server, tool, hash): the first process to see a definition records
it and audits ``tool.changed`` once; every later sighting, on any instance, finds the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import events
from audit.services import record
from core import changes
from upstreams.exceptions import ToolPinningError
from upstreams.models import ApprovedTool, ToolChange, UpstreamServer
from upstreams.pinning import definition_hash, definition_of, readable_diff
from upstreams.services import set_server_flag
from upstreams.tools import list_upstream_tools

GATEWAY_ACTOR = "gateway"


@dataclass(frozen=True)
class SeenDefinition:
    """A tool definition a gateway process saw in a relayed ``tools/list`` answer."""

    name: str
    definition: dict[str, Any]
    hash: str


@dataclass(frozen=True)
class Approval:
    approved: list[str]
    unchanged: list[str]


def current_definitions(*, server: UpstreamServer) -> dict[str, dict[str, Any]]:
    """The upstream's current tool definitions by name, asked now (never from the cache)."""
    listing = list_upstream_tools(servers=[server], fresh=True)[server.name]
    if not listing.reachable:
        raise ToolPinningError(f"Could not list the tools of {server.name}: {listing.error}.")
    return {tool.name: tool.definition or {"name": tool.name} for tool in listing.tools}


def _as_sdk_reads(definition: Mapping[str, Any]) -> dict[str, Any] | None:
    """``definition`` as the SDK client reads it (it drops fields it does not know)."""
    # Imported here: the SDK's types cost about a second of start-up in every process (web,
    # worker, every command), and only an approval needs them.
    from mcp.types import Tool
    from pydantic import ValidationError

    try:
        tool = Tool.model_validate(dict(definition))
    except ValidationError:
        return None
    return definition_of(tool.model_dump(by_alias=True, mode="json", exclude_none=True))


def _as_the_gateway_saw(server: UpstreamServer, name: str, listed: dict[str, Any]) -> dict[str, Any]:
    """The definition to approve for ``listed`` (read through the SDK): the one the gateway saw
    in a pending change when the SDK reads that one as ``listed``, since the gateway compares what
    upstreams send (an annotation field unknown to the SDK included); else ``listed``."""
    pending = ToolChange.objects.filter(server=server, name=name, status=ToolChange.Status.PENDING)
    for change in pending.order_by("-first_seen_at"):
        if change.definition != listed and _as_sdk_reads(change.definition) == definition_of(listed):
            return dict(change.definition)
    return listed


def _record_change(
    *, server: UpstreamServer, definition: Mapping[str, Any], digest: str, audit: bool, actor: str
) -> ToolChange | None:
    """The pending change for a definition that is not the approved one; None if already known."""
    name = str(definition.get("name", ""))
    approved = ApprovedTool.objects.filter(server=server, name=name).first()
    if approved is not None and approved.hash == digest:
        return None
    if ToolChange.objects.filter(server=server, name=name, hash=digest).exists():
        return None
    diff = readable_diff(approved.definition if approved else None, definition, name=name)
    try:
        with transaction.atomic():
            change = ToolChange.objects.create(
                server=server, name=name, definition=definition_of(definition), hash=digest,
                approved_hash=approved.hash if approved else "", diff=diff, first_seen_at=timezone.now(),
            )
            if audit:
                record(
                    event=events.TOOL_CHANGED,
                    actor=actor,
                    server=server.name,
                    tool=name[:200],
                    detail={
                        "kind": "changed" if approved else "new",
                        "hash": digest,
                        "approved_hash": approved.hash if approved else "",
                        "diff": diff,
                    },
                )
    except IntegrityError:  # another process recorded (and audited) it first
        return None
    return change


def offer_definitions(
    *, server: UpstreamServer, definitions: Iterable[Mapping[str, Any]]
) -> list[ToolChange]:
    """Record the definitions that are not approved as pending changes (not audited: an offer)."""
    offered = []
    for definition in definitions:
        change = _record_change(
            server=server, definition=definition, digest=definition_hash(definition), audit=False,
            actor="",
        )
        if change is not None:
            offered.append(change)
    return offered


def set_pin_tools(
    *, server: UpstreamServer, enabled: bool, actor: str, client_ip: str | None = None
) -> UpstreamServer:
    """Turn tool pinning on or off. Turning it on offers the current definitions (best effort)."""
    server, changed = set_server_flag(
        server=server, field="pin_tools", value=enabled, actor=actor, client_ip=client_ip
    )
    if enabled and changed:
        offer_current_tools(server=server)
    return server


def offer_current_tools(*, server: UpstreamServer) -> int:
    """Offer the upstream's current definitions for approval; 0 if it cannot be listed now."""
    try:
        definitions = current_definitions(server=server)
    except ToolPinningError:
        return 0
    return len(offer_definitions(server=server, definitions=definitions.values()))


def _approve(
    *, server: UpstreamServer, definition: Mapping[str, Any], actor: str, client_ip: str | None
) -> bool:
    """Store ``definition`` as approved; False if it already was."""
    name = str(definition["name"])
    digest = definition_hash(definition)
    now = timezone.now()
    current = ApprovedTool.objects.filter(server=server, name=name).first()
    ToolChange.objects.filter(server=server, name=name, hash=digest).exclude(
        status=ToolChange.Status.APPROVED
    ).update(status=ToolChange.Status.APPROVED, decided_at=now, decided_by=actor)
    if current is not None and current.hash == digest:
        return False
    ApprovedTool.objects.update_or_create(
        server=server, name=name,
        defaults={
            "definition": definition_of(definition), "hash": digest, "last_seen_hash": digest,
            "approved_at": now, "approved_by": actor,
        },
    )
    record(
        event=events.TOOL_APPROVED, actor=actor, server=server.name, tool=name[:200], client_ip=client_ip,
        detail={"hash": digest, "previous_hash": current.hash if current else ""},
    )
    return True


def approve_tools(
    *, server: UpstreamServer, names: Sequence[str] | None, actor: str, client_ip: str | None = None
) -> Approval:
    """Approve the current definitions of ``names`` (None: every tool the upstream lists now)."""
    definitions = current_definitions(server=server)
    wanted = sorted(definitions) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in definitions]
    if unknown:
        raise ToolPinningError(f"{server.name} does not list {', '.join(sorted(unknown))}.")
    approved: list[str] = []
    unchanged: list[str] = []
    with transaction.atomic():
        for name in wanted:
            definition = _as_the_gateway_saw(server, name, definitions[name])
            changed = _approve(server=server, definition=definition, actor=actor, client_ip=client_ip)
            (approved if changed else unchanged).append(name)
    return Approval(approved=approved, unchanged=unchanged)


def decide_change(
    *, change: ToolChange, approve: bool, actor: str, client_ip: str | None = None
) -> ToolChange:
    """Approve (its definition becomes the approved one) or reject (it stays hidden, not re-audited)."""
    with transaction.atomic():
        change = ToolChange.objects.select_for_update().select_related("server").get(pk=change.pk)
        if change.status != ToolChange.Status.PENDING:
            return change
        if approve:
            _approve(server=change.server, definition=change.definition, actor=actor, client_ip=client_ip)
            change.refresh_from_db()
            return change
        change.status = ToolChange.Status.REJECTED
        change.decided_at, change.decided_by = timezone.now(), actor
        change.save(update_fields=["status", "decided_at", "decided_by"])
        record(
            event=events.TOOL_REJECTED, actor=actor, server=change.server.name, tool=change.name[:200],
            client_ip=client_ip, detail={"hash": change.hash},
        )
    return change


def note_seen_definitions(*, server_id: int, seen: Sequence[SeenDefinition]) -> int:
    """What a gateway process saw listed: remember each last seen hash, record and audit changes.

    Returns how many changes were recorded (each audited ``tool.changed`` exactly once).
    """
    server = UpstreamServer.objects.filter(pk=server_id).first()
    if server is None:
        return 0
    recorded = 0
    for item in seen:
        if ApprovedTool.objects.filter(server=server, name=item.name).exclude(
            last_seen_hash=item.hash
        ).update(last_seen_hash=item.hash):
            changes.publish(changes.SERVER)  # the pins admission caches (``gateway.admission.caches``)
        change = _record_change(
            server=server, definition=item.definition, digest=item.hash, audit=True, actor=GATEWAY_ACTOR
        )
        recorded += change is not None
    return recorded

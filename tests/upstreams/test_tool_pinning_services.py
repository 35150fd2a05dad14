"""Tool pinning workflows, commands, console and API: offer, approve, reject, what the gateway saw.

The upstream's live listing is replaced by a dictionary here (``current_definitions``); the live
upstream is exercised in tests/gateway/test_tool_pinning.py.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import events
from audit.models import AuditEvent
from upstreams import pinning_services
from upstreams.models import ApprovedTool, ToolChange, UpstreamServer
from upstreams.pinning import definition_hash
from upstreams.pinning_services import SeenDefinition, note_seen_definitions
from upstreams.services import create_server
from upstreams.target import enabled_target

ECHO = {"name": "echo", "description": "Return the text.", "inputSchema": {"type": "object"}}
ADD = {"name": "add", "description": "Add two numbers.", "inputSchema": {"type": "object"}}


@pytest.fixture
def upstream(monkeypatch) -> dict[str, dict[str, Any]]:
    """What the upstream lists now; tests edit it."""
    current = {"echo": dict(ECHO), "add": dict(ADD)}
    monkeypatch.setattr(pinning_services, "current_definitions", lambda *, server: dict(current))
    return current


@pytest.fixture
def pinned(db, upstream) -> UpstreamServer:
    server = create_server(name="pinned", url="http://127.0.0.1:9/mcp", actor="seed", pin_tools=True)
    pinning_services.offer_current_tools(server=server)
    return server


def _seen(definition: dict[str, Any]) -> SeenDefinition:
    return SeenDefinition(name=definition["name"], definition=definition, hash=definition_hash(definition))


def test_enabling_offers_the_current_definitions_without_approving_them(db, upstream):
    server = create_server(name="s", url="http://127.0.0.1:9/mcp", actor="seed")
    pinning_services.set_pin_tools(server=server, enabled=True, actor="admin")
    offered = sorted(ToolChange.objects.values_list("name", "status"))
    assert offered == [("add", "pending"), ("echo", "pending")]
    assert not ApprovedTool.objects.exists()
    row = AuditEvent.objects.get(event=events.SERVER_UPDATED)
    assert row.detail == {"changed": ["pin_tools"], "pin_tools": True}
    # Offers are not changes: nothing is audited as tool.changed.
    assert not AuditEvent.objects.filter(event=events.TOOL_CHANGED).exists()


def test_approval_pins_the_current_definition_and_admission_loads_it(pinned, upstream):
    result = pinning_services.approve_tools(server=pinned, names=["echo"], actor="admin")
    assert result.approved == ["echo"] and result.unchanged == []
    approved = ApprovedTool.objects.get(server=pinned, name="echo")
    assert approved.hash == approved.last_seen_hash == definition_hash(ECHO)
    assert ToolChange.objects.get(name="echo").status == ToolChange.Status.APPROVED
    assert ToolChange.objects.get(name="add").status == ToolChange.Status.PENDING
    target = enabled_target("pinned")
    assert target is not None and target.pins is not None
    assert dict(target.pins.approved) == {"echo": definition_hash(ECHO)}
    assert AuditEvent.objects.get(event=events.TOOL_APPROVED).tool == "echo"
    again = pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    assert again.approved == ["add"] and again.unchanged == ["echo"]


def test_unpinned_targets_carry_no_pins(db):
    create_server(name="plain", url="http://127.0.0.1:9/mcp", actor="seed")
    target = enabled_target("plain")
    assert target is not None and target.pins is None


def test_a_change_seen_by_the_gateway_is_recorded_and_audited_once(pinned, upstream):
    pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    changed = {**ECHO, "description": "Return the text, and keep a copy."}
    for _ in range(3):
        note_seen_definitions(server_id=pinned.pk, seen=[_seen(changed), _seen(ADD)])
    rows = AuditEvent.objects.filter(event=events.TOOL_CHANGED)
    assert rows.count() == 1
    row = rows.get()
    assert row.tool == "echo" and row.server == "pinned" and row.detail["kind"] == "changed"
    assert '+  "description": "Return the text, and keep a copy."' in row.detail["diff"]
    change = ToolChange.objects.get(name="echo", status=ToolChange.Status.PENDING)
    assert change.approved_hash == definition_hash(ECHO) and change.first_seen_at is not None
    assert ApprovedTool.objects.get(name="echo").last_seen_hash == definition_hash(changed)
    assert enabled_target("pinned").pins.last_seen["echo"] == definition_hash(changed)


def test_a_rejected_change_is_not_audited_again_and_an_approved_one_is_pinned(pinned, upstream):
    pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    first = {**ECHO, "description": "v2"}
    note_seen_definitions(server_id=pinned.pk, seen=[_seen(first)])
    change = ToolChange.objects.get(name="echo", status=ToolChange.Status.PENDING)
    pinning_services.decide_change(change=change, approve=False, actor="admin")
    note_seen_definitions(server_id=pinned.pk, seen=[_seen(first)])
    assert AuditEvent.objects.filter(event=events.TOOL_CHANGED).count() == 1
    assert AuditEvent.objects.get(event=events.TOOL_REJECTED).tool == "echo"
    assert ApprovedTool.objects.get(name="echo").hash == definition_hash(ECHO)

    second = {**ECHO, "description": "v3"}
    note_seen_definitions(server_id=pinned.pk, seen=[_seen(second)])
    pending = ToolChange.objects.get(name="echo", status=ToolChange.Status.PENDING)
    pinning_services.decide_change(change=pending, approve=True, actor="admin")
    assert ApprovedTool.objects.get(name="echo").hash == definition_hash(second)
    assert ToolChange.objects.get(pk=pending.pk).status == ToolChange.Status.APPROVED


def test_a_new_tool_is_recorded_as_new(pinned, upstream):
    pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    fresh = {"name": "fresh", "description": "New.", "inputSchema": {"type": "object"}}
    note_seen_definitions(server_id=pinned.pk, seen=[_seen(fresh)])
    row = AuditEvent.objects.get(event=events.TOOL_CHANGED)
    assert row.tool == "fresh" and row.detail["kind"] == "new" and row.detail["approved_hash"] == ""


# --- commands ----------------------------------------------------------------------------------


def test_add_server_pin_tools_and_approve_tools_commands(db, upstream):
    out = StringIO()
    call_command("add_server", "files", "http://127.0.0.1:9/mcp", "--pin-tools", stdout=out)
    assert "tools pinned, 2 offered for approval" in out.getvalue()
    assert UpstreamServer.objects.get(name="files").pin_tools
    out = StringIO()
    call_command("approve_tools", "files", "echo", stdout=out)
    assert out.getvalue().strip() == "Approved on files: echo; already approved: none"
    out = StringIO()
    call_command("approve_tools", "files", "--all", stdout=out)
    assert out.getvalue().strip() == "Approved on files: add; already approved: echo"


def test_add_server_without_the_flag_does_not_pin(db, upstream):
    call_command("add_server", "plain", "http://127.0.0.1:9/mcp", stdout=StringIO())
    assert not UpstreamServer.objects.get(name="plain").pin_tools
    assert not ToolChange.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pinned"], "Name the tools to approve, or pass --all"),
        (["pinned", "echo", "--all"], "Name the tools to approve, or pass --all"),
        (["nosuch", "--all"], "No server named 'nosuch'"),
        (["pinned", "nope"], "pinned does not list nope"),
    ],
)
def test_approve_tools_errors(pinned, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("approve_tools", *args, stdout=StringIO())


def test_an_unreachable_upstream_cannot_be_approved(db):
    server = create_server(name="down", url="http://127.0.0.1:9/mcp", actor="seed", pin_tools=True)
    with pytest.raises(CommandError, match="Could not list the tools of down"):
        call_command("approve_tools", server.name, "--all", stdout=StringIO())


# --- console and API ---------------------------------------------------------------------------


def test_console_lists_pending_changes_with_their_diff_and_decides_them(staff_client, pinned, upstream):
    pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    note_seen_definitions(server_id=pinned.pk, seen=[_seen({**ECHO, "description": "Sneaky."})])
    note_seen_definitions(server_id=pinned.pk, seen=[_seen({**ADD, "description": "Also sneaky."})])
    html = staff_client.get("/console/servers/pinned/").content.decode()
    assert "Tool definitions waiting for approval" in html
    assert "(changed since approved)" in html and "+  &quot;description&quot;: &quot;Sneaky.&quot;" in html
    echo, add = (ToolChange.objects.get(name=n, status="pending") for n in ("echo", "add"))
    response = staff_client.post(f"/console/servers/pinned/tool-changes/{echo.pk}/approve/")
    assert response.status_code == 302
    assert ApprovedTool.objects.get(name="echo").definition["description"] == "Sneaky."
    staff_client.post(f"/console/servers/pinned/tool-changes/{add.pk}/reject/")
    assert ToolChange.objects.get(pk=add.pk).status == ToolChange.Status.REJECTED
    assert ApprovedTool.objects.get(name="add").hash == definition_hash(ADD)
    assert "Nothing waits for approval." in staff_client.get("/console/servers/pinned/").content.decode()


def test_auditors_see_pending_changes_but_cannot_decide(auditor_client, pinned):
    change = ToolChange.objects.filter(server=pinned).first()
    html = auditor_client.get("/console/servers/pinned/").content.decode()
    assert "Tool definitions waiting for approval" in html and ">Approve</button>" not in html
    response = auditor_client.post(f"/console/servers/pinned/tool-changes/{change.pk}/approve/")
    assert response.status_code in (302, 403)
    assert not ApprovedTool.objects.exists()


def test_the_edit_form_toggles_pinning(staff_client, db, upstream):
    create_server(name="files", url="http://files:8080/mcp", actor="seed")
    form = {"url": "http://files:8080/mcp", "transport": "streamable", "description": "", "headers": "",
            "pin_tools": "on"}
    assert staff_client.post("/console/servers/files/edit/", form).status_code == 302
    assert UpstreamServer.objects.get(name="files").pin_tools
    assert ToolChange.objects.count() == 2
    assert 'name="pin_tools"' in staff_client.get("/console/servers/files/edit/").content.decode()
    form.pop("pin_tools")
    staff_client.post("/console/servers/files/edit/", form)
    assert not UpstreamServer.objects.get(name="files").pin_tools


def test_the_add_form_can_pin(staff_client, db, upstream):
    response = staff_client.post("/console/servers/add/", {
        "name": "files", "url": "http://files:8080/mcp", "transport": "streamable", "pin_tools": "on",
    })
    assert response.status_code == 302
    assert UpstreamServer.objects.get(name="files").pin_tools
    assert ToolChange.objects.count() == 2


def test_the_api_shows_pin_tools(staff_client, pinned):
    body = staff_client.get("/api/v1/servers/").json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [row["pin_tools"] for row in rows if row["name"] == "pinned"] == [True]


def test_the_django_admin_shows_pins_read_only(admin_client, pinned):
    pinning_services.approve_tools(server=pinned, names=["echo"], actor="admin")
    assert "echo" in admin_client.get("/admin/upstreams/approvedtool/").content.decode()
    assert "pending" in admin_client.get("/admin/upstreams/toolchange/").content.decode()
    assert admin_client.get("/admin/upstreams/toolchange/add/").status_code == 403


def test_approval_keeps_what_the_gateway_saw_when_the_sdk_reads_it_differently(pinned, upstream):
    """The SDK client drops annotation fields it does not know; the gateway compares them."""
    pinning_services.approve_tools(server=pinned, names=None, actor="admin")
    raw = {**ECHO, "annotations": {"readOnlyHint": True, "x-vendor": "kept"}}
    upstream["echo"] = {**ECHO, "annotations": {"readOnlyHint": True}}  # as the SDK listing reads it
    note_seen_definitions(server_id=pinned.pk, seen=[_seen(raw)])
    pinning_services.approve_tools(server=pinned, names=["echo"], actor="admin")
    assert ApprovedTool.objects.get(name="echo").hash == definition_hash(raw)
    assert ToolChange.objects.get(name="echo", hash=definition_hash(raw)).status == ToolChange.Status.APPROVED

"""Tool scope: refuse ``tools/call`` outside the token's allowlist, filter ``tools/list`` results.

Decisions read the JSON-RPC body only. A filtered list is per-token, so where the revision has
cache hints (``ttlMs``/``cacheScope``) every list that passes the gateway is marked private.
"""

from __future__ import annotations

import json
import re
from typing import Any

from audit import events
from gateway.admission.db_pool import run_db
from gateway.mcp import tool_pins
from gateway.mcp.protocol import INVALID_PARAMS, MODERN_VERSIONS, RpcBody
from gateway.request.refusals import InsufficientScope, Refusal
from tokens.oauth.selectors import step_up_scope
from tokens.scope import TokenScope
from tokens.services import AuthenticatedToken
from upstreams.pinning import ToolPins
from upstreams.target import UpstreamTarget

# Tool names a step-up challenge may name: nothing that could end the quoted scope value.
_SCOPE_TOOL = re.compile(r"^[A-Za-z0-9_.\-/]{1,128}$")


class UncheckableAnswer(Exception):
    """An upstream message the filter cannot read, so it must not reach the client."""


def refuse_denied_tools(
    *, body: RpcBody, scope: TokenScope, server: str, protocol_version: str | None
) -> None:
    """Raise a JSON-RPC ``Refusal`` if any ``tools/call`` in the body names a tool outside the scope.

    A batch with one refused element is refused as a whole: each request in it gets an error.
    """
    denied = [
        m for m in body.messages if m.tool_name is not None and not scope.allows_tool(server, m.tool_name)
    ]
    if not denied:
        return
    tool = denied[0].tool_name or ""
    # The modern revision maps INVALID_PARAMS to HTTP 400; older ones answer JSON-RPC errors with
    # 200. A body of notifications has no request to answer: the transport wants an HTTP error.
    status = 400 if protocol_version in MODERN_VERSIONS or not body.has_requests else 200
    raise Refusal(
        f"Tool {tool!r} is not allowed for this token.",
        status=status,
        code="tool_not_in_scope",
        audit_event=events.MCP_TOOL_DENIED,
        tool=tool,
        rpc_code=INVALID_PARAMS,
        request_ids=body.request_ids(),
        data={"error": "insufficient_scope", "tool": tool, "server": server},
    )


async def step_up(refusal: Refusal, *, token: AuthenticatedToken, server: str, endpoint_path: str) -> Refusal:
    """A tool outside an OAuth token's scope that its owner's grant allows becomes HTTP 403
    ``insufficient_scope`` naming the scope to ask for, so the client can ask its user (MCP
    step-up authorization). Every other refusal is returned as it was.

    Only refusals reach the database here (one query), never an admitted call.
    """
    nameable = _SCOPE_TOOL.match(refusal.tool or "")
    if refusal.code != "tool_not_in_scope" or not token.via_oauth or not nameable:
        # A name that could not stand in the challenge's quoted scope stays a plain refusal.
        return refusal
    scope = await run_db(step_up_scope, owner_id=token.owner_id, server=server, tool=refusal.tool)
    if scope is None:
        return refusal
    return InsufficientScope(
        f"Tool {refusal.tool!r} needs the scope {scope}: ask for it and try again.",
        scope=scope, resource_path=endpoint_path, tool=refusal.tool, audit_event=events.MCP_TOOL_DENIED,
        reason="step_up_required",
    )


def refuse_unpinned_tools(*, body: RpcBody, target: UpstreamTarget, protocol_version: str | None) -> None:
    """On a pinned server, refuse a ``tools/call`` of a tool not approved or changed since approval.

    No database hop: the approved and last seen hashes came with admission, and this process
    remembers what it last saw listed. Either one saying "changed" refuses the call.
    """
    tool_pins.remember(target)
    pins = target.pins
    if pins is None:
        return
    for message in body.messages:
        tool = message.tool_name
        if tool is None:
            continue
        approved = pins.approved.get(tool)
        if approved is None:
            reason, detail = "not_approved", "the tool has not been approved on this server"
        elif {tool_pins.last_seen(target.id, tool), pins.last_seen.get(tool)} - {None, approved}:
            reason, detail = "changed", "the tool's definition changed since it was approved"
        else:
            continue
        status = 400 if protocol_version in MODERN_VERSIONS or not body.has_requests else 200
        raise Refusal(
            f"Tool {tool!r} is not available: {detail}; an administrator must approve it.",
            status=status,
            code="tool_not_approved",
            reason=f"tool_not_approved:{reason}",
            audit_event=events.MCP_TOOL_DENIED,
            tool=tool,
            rpc_code=INVALID_PARAMS,
            request_ids=body.request_ids(),
            data={"error": "tool_not_approved", "reason": reason, "tool": tool, "server": target.name},
        )


def _filter_result(
    result: dict[str, Any], allowed: frozenset[str] | None, pins: tool_pins.PinFilter | None = None
) -> dict[str, Any]:
    tools = result["tools"]
    current: ToolPins | None = pins.pins if pins is not None else None
    if pins is not None and current is not None:
        # Every tool is checked (also those outside the token's scope): a change is recorded once.
        tools = [t for t in tools if isinstance(t, dict) and pins.keep(current, t)]
    if allowed is not None:
        tools = [t for t in tools if isinstance(t, dict) and t.get("name") in allowed]
    filtered = {**result, "tools": tools}
    if "cacheScope" in result or "ttlMs" in result:
        filtered["cacheScope"] = "private"
    return filtered


def _filter_message(
    message: Any, allowed: frozenset[str] | None, pins: tool_pins.PinFilter | None = None
) -> tuple[Any, bool]:
    if not isinstance(message, dict) or "id" not in message:
        return message, False
    result = message.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return message, False
    return {**message, "result": _filter_result(result, allowed, pins)}, True


def filter_tools_payload(
    payload: bytes | str, allowed: frozenset[str] | None, pins: tool_pins.PinFilter | None = None
) -> bytes | None:
    """Filtered JSON for a body or SSE data that carries a ``tools/list`` result; None if unchanged.

    ``pins``: a pinned server's listed tools also pass only while they match their approved
    definitions (``gateway.mcp.tool_pins``); then ``await pins.flush()`` records what was new.

    Raises ``UncheckableAnswer`` for a payload that may name tools but does not parse here.

    Recognised by shape (a response whose result has a ``tools`` list), so it also works on
    streams where the request was posted to another instance (legacy SSE). Read as leniently as
    the most lenient client would (invalid UTF-8 replaced, a BOM skipped, escaped key names):
    whatever a client can parse as a tool list, the filter has seen as one.
    """
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    text = text.lstrip("\ufeff")
    if "tools" not in text and "\\u" not in text:
        return None  # the fast path: progress, results and notifications of other methods
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # Python refuses what some clients read (a 5000-digit number, deep nesting): fail closed.
        raise UncheckableAnswer(
            "The upstream's answer could not be checked against the token's tools."
        ) from exc
    if isinstance(decoded, list):
        pairs = [_filter_message(item, allowed, pins) for item in decoded]
        if not any(changed for _, changed in pairs):
            return None
        return json.dumps([item for item, _ in pairs], separators=(",", ":")).encode()
    filtered, changed = _filter_message(decoded, allowed, pins)
    return json.dumps(filtered, separators=(",", ":")).encode() if changed else None

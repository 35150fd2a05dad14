"""Test this token": what a token can see, asked of the gateway itself, as a client would ask.

Gatehouse never stores a token's secret, so the admin pastes it (a POST body, never a URL). It
must be this token's: its ``jti`` (read from the unverified claims only to compare) must match the
page's token, else nothing is sent. Then, for each server in the token's scope, the gateway's own
MCP endpoint gets ``initialize``, ``notifications/initialized``, ``tools/list`` and a ``DELETE``
of the session, over HTTP, so every check a client meets is met (signature, revocation, expiry,
scope, tool filtering, pinning, upstream reachability). The outcome per server is audited as one
``token.tested`` event naming the servers and statuses, never the secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from audit import events
from audit.services import record
from core.exceptions import GatehouseError
from core.secrets_mask import TOKEN_PREFIX
from tokens.models import Token

PROTOCOL_VERSION = "2025-06-18"
TIMEOUT_SECONDS = 10.0


class ProbeRefused(GatehouseError):
    """The pasted secret is not this token's; nothing was sent."""

    code = "not_this_token"


@dataclass(frozen=True)
class ServerProbe:
    server: str
    status: int | None  # the gateway's answer to initialize (or to tools/list when that failed)
    tools: list[str]
    error: str  # "" when the token could list tools

    @property
    def ok(self) -> bool:
        return not self.error


def probe_token(
    *, token: Token, secret: str, gateway_url: str, actor: str, client_ip: str | None
) -> list[ServerProbe]:
    """Run ``initialize`` + ``tools/list`` through the gateway for each server of ``token``'s scope.

    ``gateway_url`` is the gateway's base URL as this console request reached it.
    """
    secret = secret.strip()
    if _jti_of(secret) != token.jti:
        raise ProbeRefused("That is not this token's secret: paste the token shown when it was issued.")
    results = []
    with httpx.Client(timeout=TIMEOUT_SECONDS, headers={"Authorization": f"Bearer {secret}"}) as client:
        for server in sorted(token.scope or {}):
            results.append(_probe_server(client, f"{gateway_url.rstrip('/')}/mcp/{server}/", server))
    record(
        event=events.TOKEN_TESTED, actor=actor, token_jti=token.jti, owner=token.owner.get_username(),
        client_ip=client_ip,
        detail={"servers": {r.server: {"status": r.status, "tools": len(r.tools), "error": r.error}
                            for r in results}},
    )
    return results


def _jti_of(secret: str) -> str:
    try:
        claims = jwt.decode(secret.removeprefix(TOKEN_PREFIX), options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else ""


def _probe_server(client: httpx.Client, url: str, server: str) -> ServerProbe:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL_VERSION}
    try:
        started = client.post(url, headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "gatehouse-console-test", "version": "1"}},
        })
        if started.status_code != 200:
            return ServerProbe(server, started.status_code, [], _refusal(started))
        session = started.headers.get("mcp-session-id", "")
        if session:
            headers["Mcp-Session-Id"] = session
        client.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        if session:
            client.delete(url, headers=headers)
    except httpx.HTTPError as exc:
        return ServerProbe(server, None, [], f"the gateway could not be reached ({type(exc).__name__})")
    if listed.status_code != 200:
        return ServerProbe(server, listed.status_code, [], _refusal(listed))
    message = _message(listed)
    if "error" in message:
        reason = str(message["error"].get("message", "error"))[:300]
        return ServerProbe(server, listed.status_code, [], reason)
    tools = [str(t.get("name")) for t in message.get("result", {}).get("tools", []) if isinstance(t, dict)]
    return ServerProbe(server, started.status_code, sorted(tools), "")


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        if isinstance(error, dict):  # a JSON-RPC error
            return str(error.get("message", ""))[:300]
        return f"{error}: {body.get('detail', '')}"[:300]
    return f"HTTP {response.status_code}"


def _message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer, from a JSON body or the first ``data:`` event of an event stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                try:
                    found = json.loads(line[5:])
                except ValueError:
                    continue
                if isinstance(found, dict) and ("result" in found or "error" in found):
                    return found
        return {}
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}

"""Realistic synthetic audit events for load tests (``manage.py seed_audit``).

The mix mirrors a busy gateway: mostly ``mcp.request`` and ``mcp.tool_call`` from a few hundred
tokens with skewed popularity, some denials, session churn and a trickle of admin events. Times
are spread evenly (with jitter) over the requested period and never go backwards, like the chain.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from typing import Any

from audit import events

SERVERS: dict[str, list[str]] = {
    "github": ["search_issues", "get_issue", "create_pull_request", "list_commits", "get_file_contents"],
    "jira": ["search", "get_ticket", "add_comment", "transition_ticket"],
    "postgres-ro": ["query", "list_tables", "describe_table"],
    "filesystem": ["read_file", "list_directory", "search_files", "write_file"],
    "slack": ["post_message", "search_messages", "list_channels"],
    "sentry": ["list_issues", "get_event", "resolve_issue"],
    "grafana": ["query_prometheus", "list_dashboards", "get_panel"],
    "linear": ["create_issue", "list_issues", "update_issue"],
    "notion": ["search_pages", "get_page", "append_block"],
    "k8s": ["get_pods", "describe_deployment", "get_logs", "rollout_restart"],
    "stripe-ro": ["list_charges", "get_customer"],
    "demo": ["echo", "add", "slow_progress"],
}
USER_AGENTS = [
    "supergateway/3.4.0 node/22.11.0",
    "claude-code/1.0.88 (linux; x64)",
    "Claude-Desktop/0.12.20 (darwin; arm64)",
    "python-httpx/0.28.1 mcp/1.12.3",
    "mcp-inspector/0.16.2 node-fetch/3.3.2",
    "curl/8.5.0",
    "GitHub-Actions-Runner/2.321.0",
]
WORDS = [
    "latency", "deploy", "rollback", "invoice", "customer", "outage", "billing", "migration",
    "index", "replica", "cache", "timeout", "retry", "kubernetes", "postgres", "redis",
    "certificate", "rotation", "alert", "dashboard", "incident", "payment", "refund", "webhook",
    "schema", "backup", "restore", "pipeline", "release", "canary", "feature", "flag", "quota",
    "throttle", "gateway", "session", "token", "scope", "audit", "compliance", "export", "report",
    "weekly", "monthly", "region", "europe", "us-east", "cluster", "node", "pod", "container",
    "image", "registry", "vulnerability", "patch", "upgrade",
]
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
METHODS = ["tools/list", "resources/list", "prompts/list", "ping", "initialize", "notifications/initialized"]
DENY_REASONS = ["token expired", "token revoked", "unknown signing key", "bad signature", "no credentials"]
OWNERS = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "ci-bot",
]
# (event, weight) — cumulative choice over a realistic mix.
MIX = [
    (events.MCP_REQUEST, 5500), (events.MCP_TOOL_CALL, 2800), (events.MCP_TOOL_DENIED, 300),
    (events.AUTH_DENIED, 500), (events.SESSION_CREATED, 300), (events.SESSION_EXPIRED, 200),
    (events.SESSION_CLOSED, 100), (events.APIKEY_USED, 150), (events.TOKEN_ISSUED, 60),
    (events.TOKEN_ROTATED, 20), (events.TOKEN_REVOKED, 20), (events.CONSOLE_LOGIN, 40),
    (events.CONSOLE_LOGIN_FAILED, 10),
]


@dataclass
class _Token:
    jti: str
    owner: str
    servers: list[str]
    ips: list[str]
    user_agent: str
    session: str = ""
    rpc_id: int = 0
    allowed: dict[str, list[str]] = field(default_factory=dict)


class SyntheticAudit:
    def __init__(self, *, seed: int = 42, tokens: int = 400) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible load data, not secrets
        self.tokens = [self._token() for _ in range(tokens)]
        # Skewed popularity: a few tokens carry most of the traffic.
        self.token_weights = list(accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(tokens)))
        self.event_names = [name for name, _ in MIX]
        self.event_weights = list(accumulate(weight for _, weight in MIX))

    def _hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _ip(self) -> str:
        kind = self.rng.random()
        if kind < 0.6:
            return f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        if kind < 0.9:
            return f"192.168.{self.rng.randrange(16)}.{self.rng.randrange(1, 255)}"
        return f"2001:db8::{self.rng.randrange(1, 0xFFFF):x}"

    def _token(self) -> _Token:
        servers = self.rng.sample(sorted(SERVERS), k=self.rng.randint(1, 3))
        allowed = {s: self.rng.sample(SERVERS[s], k=max(1, len(SERVERS[s]) - 1)) for s in servers}
        return _Token(
            jti=self._hex(128), owner=self.rng.choice(OWNERS), servers=servers,
            ips=[self._ip() for _ in range(self.rng.randint(1, 3))],
            user_agent=self.rng.choice(USER_AGENTS), allowed=allowed,
        )

    def _words(self, low: int, high: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=self.rng.randint(low, high)))

    def events(self, *, count: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """``count`` ``record()`` keyword dicts with times ascending from ``start`` to ``end``."""
        step = (end - start) / max(count, 1)
        for index in range(count):
            moment = start + step * index + step * self.rng.random() * 0.9
            yield self._event(moment)

    def _event(self, moment: datetime) -> dict[str, Any]:
        rng = self.rng
        name = rng.choices(self.event_names, cum_weights=self.event_weights)[0]
        token = rng.choices(self.tokens, cum_weights=self.token_weights)[0]
        server = rng.choice(token.servers)
        token.rpc_id += 1
        if not token.session or rng.random() < 0.01:
            token.session = self._hex(128)
        base: dict[str, Any] = {
            "event": name, "created_at": moment, "token_jti": token.jti, "owner": token.owner,
            "server": server, "session_id": token.session, "client_ip": rng.choice(token.ips),
            "user_agent": token.user_agent, "actor": token.owner,
        }
        latency = round(rng.lognormvariate(3.2, 0.9), 2)
        if name == events.MCP_REQUEST:
            method = rng.choice(METHODS)
            base.update(status=200, latency_ms=latency, detail={
                "method": method, "rpc_id": token.rpc_id, "protocol_version": "2025-06-18",
                "bytes_out": rng.randint(80, 20_000), "filtered_tools": method == "tools/list",
            })
        elif name == events.MCP_TOOL_CALL:
            tool = rng.choice(token.allowed[server])
            failed = rng.random() < 0.03
            detail: dict[str, Any] = {
                "method": "tools/call", "rpc_id": token.rpc_id,
                "arguments": {"query": self._words(1, 5), "limit": rng.choice([10, 20, 50])},
                "bytes_out": rng.randint(200, 60_000),
            }
            if rng.random() < 0.2:
                detail["ticket"] = f"INC-{rng.randrange(100_000):05d}"
            if failed:
                detail["error"] = rng.choice(["upstream timeout", "upstream unreachable"])
            base.update(tool=tool, status=rng.choice([502, 504]) if failed else 200,
                        outcome="error" if failed else "success", latency_ms=latency * 3, detail=detail)
        elif name == events.MCP_TOOL_DENIED:
            tool = rng.choice(SERVERS[server])
            base.update(tool=tool, status=403, outcome="denied", detail={
                "method": "tools/call", "rpc_id": token.rpc_id, "reason": "tool not in token scope",
            })
        elif name == events.AUTH_DENIED:
            reason = rng.choice(DENY_REASONS)
            base.update(status=401, outcome="denied", session_id="", actor="",
                        detail={"reason": reason, "path": f"/mcp/{server}/"})
            if reason == "no credentials":
                base.update(token_jti="", owner="", client_ip=self._ip())
        elif name in (events.SESSION_CREATED, events.SESSION_EXPIRED, events.SESSION_CLOSED):
            base.update(detail={"transport": "streamable", "protocol_version": "2025-06-18"})
            if name == events.SESSION_EXPIRED:
                base["detail"]["reason"] = "idle timeout"
            elif name == events.SESSION_CLOSED:
                base["detail"]["reason"] = "client DELETE"
        elif name == events.APIKEY_USED:
            base.update(actor="ci-bot", owner="ci-bot", token_jti="", session_id="", tool="", server="")
            key = f"gthk_{self._hex(32)[:8]}_…"
            base["detail"] = {"key": key, "method": "POST", "path": "/api/v1/tokens/"}
        elif name in (events.TOKEN_ISSUED, events.TOKEN_ROTATED, events.TOKEN_REVOKED):
            actor = rng.choice(["root-admin", "ci-bot", token.owner])
            base.update(actor=actor, session_id="", client_ip=None)
            base["detail"] = {
                "name": f"{token.owner}-{self._words(1, 1)}", "display_prefix": f"gth_{token.jti[:8]}",
                "scope": {s: token.allowed[s] for s in token.servers},
            }
        else:  # console sign-ins
            failed = name == events.CONSOLE_LOGIN_FAILED
            base.update(token_jti="", server="", session_id="", status=401 if failed else 200,
                        outcome="denied" if failed else "success", user_agent=BROWSER_AGENT,
                        detail={"reason": "wrong password"} if failed else {})
        return base

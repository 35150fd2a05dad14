"""Token scope: which servers, and which tools on each, a token may use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokens.exceptions import InvalidTokenRequest

ScopeMapping = dict[str, list[str] | None]


def split_names(text: str) -> list[str]:
    """Names a person typed into a form: separated by commas or new lines, blanks dropped."""
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


def has_odd_characters(name: str) -> bool:
    """Spaces or control characters: a slip in a typed tool list, never a real tool name."""
    return any(ch.isspace() or not ch.isprintable() for ch in name)


@dataclass(frozen=True)
class TokenScope:
    """``servers`` maps a server name to its allowed tools; ``None`` means every tool."""

    servers: dict[str, frozenset[str] | None]

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> TokenScope:
        if not isinstance(mapping, dict) or not mapping:
            raise InvalidTokenRequest("A token must be scoped to at least one server.")
        servers: dict[str, frozenset[str] | None] = {}
        for server, tools in mapping.items():
            if not isinstance(server, str) or not server:
                raise InvalidTokenRequest("Server names must be non-empty strings.")
            if tools is None:
                servers[server] = None
            elif isinstance(tools, (list, tuple, set, frozenset)) and all(
                isinstance(t, str) and t for t in tools
            ):
                if not tools:
                    # An empty allowlist would mint a token that can call nothing: almost surely a slip.
                    raise InvalidTokenRequest(
                        f"Pick at least one tool for server {server!r}, or allow all its tools."
                    )
                servers[server] = frozenset(tools)
            else:
                raise InvalidTokenRequest(f"Tools for server {server!r} must be a list of names.")
        return cls(servers=servers)

    @classmethod
    def from_selection(cls, *, servers: Sequence[str], tools: Sequence[str] = ()) -> TokenScope:
        """Build a scope the way the CLI reads it: ``tools`` apply to every server unless pinned.

        ``["echo", "demo:add"]`` with servers ``demo`` and ``files`` gives ``demo`` the tools
        ``echo`` and ``add`` and ``files`` only ``echo``; a server no tool names gets all its tools
        when no unpinned tool is given.
        """
        names = [s.strip() for s in servers if s.strip()]
        if not names:
            raise InvalidTokenRequest("Name at least one server.")
        items = [t.strip() for t in tools if t.strip()]
        if tools and not items:
            # "--tools ''" from an empty shell variable must not widen the token to every tool.
            raise InvalidTokenRequest("The tool list names no tool; leave it out to allow all tools.")
        unpinned: set[str] = set()
        pinned: dict[str, set[str]] = {name: set() for name in names}
        for item in items:
            if has_odd_characters(item):
                raise InvalidTokenRequest(
                    f"Tool {item!r} contains spaces or control characters; separate tools with commas."
                )
            server, sep, tool = item.partition(":")
            if not sep:
                unpinned.add(item)
                continue
            if server not in pinned:
                raise InvalidTokenRequest(
                    f"Tool {item!r} names server {server!r}, which is not in the token."
                )
            if not tool:
                raise InvalidTokenRequest(f"Tool {item!r} has no tool name after the colon.")
            pinned[server].add(tool)
        mapping: dict[str, list[str] | None] = {}
        for name in names:
            allowed = unpinned | pinned[name]
            mapping[name] = sorted(allowed) if allowed else None
        return cls.from_mapping(mapping)

    def to_mapping(self) -> ScopeMapping:
        return {s: (None if t is None else sorted(t)) for s, t in sorted(self.servers.items())}

    def allows_server(self, server: str) -> bool:
        return server in self.servers

    def allows_tool(self, server: str, tool: str) -> bool:
        if server not in self.servers:
            return False
        tools = self.servers[server]
        return tools is None or tool in tools

    def only_server(self) -> str | None:
        """The server name when the scope has exactly one (for the bare ``/mcp/`` route)."""
        return next(iter(self.servers)) if len(self.servers) == 1 else None

    def is_within(self, ceiling: TokenScope) -> bool:
        return not self.exceeding(ceiling)

    def exceeding(self, ceiling: TokenScope) -> list[str]:
        """Human-readable list of what this scope asks beyond ``ceiling``."""
        problems: list[str] = []
        for server, tools in sorted(self.servers.items()):
            if server not in ceiling.servers:
                problems.append(f"server {server!r}")
                continue
            allowed = ceiling.servers[server]
            if allowed is None:
                continue
            if tools is None:
                problems.append(f"all tools of {server!r} (ceiling: {', '.join(sorted(allowed))})")
            else:
                problems.extend(f"tool {server}:{t}" for t in sorted(tools - allowed))
        return problems

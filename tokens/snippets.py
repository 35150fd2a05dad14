"""Copy-paste connection snippets for a freshly issued token, built from ``GATEHOUSE_PUBLIC_URL``.

Order matters: the MCP authorization spec wants tokens in headers, so the header form comes
first and the ``?key=`` URL is offered only as the fallback for clients that cannot set one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.conf import settings

from upstreams import transports

# Protocol revision the curl example asks for: widely supported by upstreams and the gateway.
CURL_PROTOCOL_VERSION = "2025-06-18"

_SHELL_SAFE_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./~-]+$")


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    hint: str
    text: str


def _double_quoted(value: str) -> str:
    """A POSIX shell double-quoted word (``$``, backquote, ``"`` and ``\\`` escaped)."""
    return '"' + re.sub(r'([$`"\\])', r"\\\1", value) + '"'


def _word(value: str) -> str:
    return value if _SHELL_SAFE_RE.match(value) else _double_quoted(value)


def mcp_url(*, server: str, public_url: str | None = None, transport: str = transports.DEFAULT.name) -> str:
    """The gateway URL clients use for ``server``, by its transport (``/sse/<server>/`` for legacy SSE)."""
    base = (public_url if public_url is not None else settings.PUBLIC_URL).rstrip("/")
    return base + transports.get(transport).client_path(server)


def _initialize_body() -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": CURL_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "curl", "version": "1.0"},
            },
        },
        separators=(",", ":"),
    )


def connection_snippets(
    *, token: str, server: str, public_url: str | None = None, transport: str = transports.DEFAULT.name
) -> list[Snippet]:
    """The ways to connect to ``server`` with ``token``, most recommended first.

    A transport whose clients cannot carry ``?key=`` on every request (legacy SSE: its clients
    post to the ``endpoint`` URL, which never carries the token) gets no ``?key=`` URL.
    """
    spec = transports.get(transport)
    url = mcp_url(server=server, public_url=public_url, transport=transport)
    sse = spec.session == "stream"
    bridge_flag = spec.bridge_flag
    desktop_config = {
        "mcpServers": {
            server: {
                "command": "npx",
                "args": ["-y", "supergateway", bridge_flag, url, "--oauth2Bearer", token],
            }
        }
    }
    auth_header = f"-H {_double_quoted(f'Authorization: Bearer {token}')}"
    if sse:
        curl = " \\\n  ".join([f"curl -sS -N -i {_word(url)}", auth_header])
        curl_title, curl_hint = (
            "curl: open the event stream",
            "Opens the server's event stream with the token, to check both from a terminal: the first "
            "event names the messages URL. Ctrl-C ends it.",
        )
    else:
        curl = " \\\n  ".join(
            [
                f"curl -sS -i -X POST {_word(url)}",
                auth_header,
                '-H "Content-Type: application/json"',
                '-H "Accept: application/json, text/event-stream"',
                f"-d '{_initialize_body()}'",
            ]
        )
        curl_title, curl_hint = (
            "curl: initialize",
            "Sends one MCP initialize request with the token, to check both from a terminal: HTTP 200 "
            "with an Mcp-Session-Id header means the token and the server work.",
        )
    snippets = [
        Snippet(
            key="supergateway-header",
            title="supergateway, token in a header (recommended)",
            hint="For clients that start a command (stdio): runs a local stdio MCP server that forwards "
            "every message to the gateway, with the token as Authorization: Bearer.",
            text=f"npx -y supergateway {bridge_flag} {_word(url)} --oauth2Bearer {_word(token)}",
        ),
    ]
    if spec.query_key_works:
        snippets.append(
            Snippet(
                key="supergateway-query",
                title="supergateway, token in the URL",
                hint="The same bridge with the token in the URL, only for setups that cannot pass a "
                "header. URLs end up in logs and shell history more easily.",
                text=f"npx -y supergateway {bridge_flag} {_double_quoted(f'{url}?key={token}')}",
            )
        )
    remote_transport = " --transport sse-only" if sse else ""
    snippets += [
        Snippet(
            key="mcp-remote",
            title="mcp-remote, token in a header",
            hint="The other common stdio bridge (Cursor, Windsurf, Claude Desktop): runs a local stdio "
            "MCP server that forwards to the gateway, sending the token as Authorization: Bearer.",
            text=(
                f"npx -y mcp-remote {_word(url)}{remote_transport} "
                f"--header {_double_quoted(f'Authorization: Bearer {token}')}"
            ),
        ),
        Snippet(
            key="claude-desktop",
            title="Claude Desktop (claude_desktop_config.json)",
            hint="Makes Claude Desktop start the supergateway bridge above: merge this entry into "
            "mcpServers in claude_desktop_config.json, then restart Claude Desktop.",
            text=json.dumps(desktop_config, indent=2),
        ),
        Snippet(
            key="claude-code",
            title="Claude Code",
            hint=f"Registers the gateway's URL in Claude Code as an {spec.claude_transport.upper()} MCP "
            "server that sends the token as Authorization: Bearer; run it once, /mcp then lists it.",
            text=(
                f"claude mcp add --transport {spec.claude_transport} {_word(server)} {_word(url)} "
                f"--header {_double_quoted(f'Authorization: Bearer {token}')}"
            ),
        ),
        Snippet(key="curl", title=curl_title, hint=curl_hint, text=curl),
    ]
    return snippets

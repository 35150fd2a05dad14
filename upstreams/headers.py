"""Credential headers the gateway adds to upstream requests: parsing and validation.

Values are secrets: they are encrypted at rest and never rendered, logged or audited; only the
header names are shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from upstreams.exceptions import InvalidServerConfig

_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the gateway itself owns on the upstream hop; an admin cannot override them.
RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "proxy-connection", "content-type", "accept", "mcp-session-id",
        "mcp-protocol-version", "last-event-id",
    }
)


def validate_header(name: str, value: str) -> tuple[str, str]:
    """Return the cleaned ``(name, value)`` or raise ``InvalidServerConfig`` (naming only the header)."""
    name = name.strip()
    value = value.strip()
    if not name or not _NAME_RE.match(name):
        raise InvalidServerConfig(f"Header name {name[:64]!r} is not a valid HTTP header name.")
    if name.lower() in RESERVED_HEADERS:
        raise InvalidServerConfig(f"Header {name} is managed by the gateway and cannot be set.")
    if any(ch in value for ch in "\r\n\0"):
        raise InvalidServerConfig(f"The value of header {name} contains a line break.")
    if not value:
        raise InvalidServerConfig(f"Header {name} needs a value.")
    return name, value


def validate_identity_header(name: str, *, forward_identity: bool, configured: Iterable[str]) -> str:
    """The cleaned name of the header that carries an identity assertion, or ``InvalidServerConfig``.

    With identity forwarding on, the header must not also be one of the server's own (static)
    headers: the upstream could not tell which one to believe. A server whose static credential
    is ``Authorization`` must therefore name another identity header.
    """
    name = name.strip()
    if not name or not _NAME_RE.match(name) or len(name) > 64:
        raise InvalidServerConfig(f"Identity header {name[:64]!r} is not a valid HTTP header name.")
    if name.lower() in RESERVED_HEADERS:
        raise InvalidServerConfig(f"Header {name} is managed by the gateway and cannot carry the identity.")
    if forward_identity and name.lower() in {n.lower() for n in configured}:
        raise InvalidServerConfig(
            f"The server already sends a static {name} header; forward the identity in another "
            "header (--identity-header, e.g. X-Gatehouse-Identity) or remove the static one."
        )
    return name


def parse_header_lines(lines: Iterable[str]) -> dict[str, str]:
    """Parse ``Name: value`` lines (blank lines skipped); a repeated name keeps the last value."""
    headers: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if ":" not in line:
            raise InvalidServerConfig("Each header must be written as Name: value.")
        name, value = line.split(":", 1)
        name, value = validate_header(name, value)
        # Header names are case-insensitive: a later spelling replaces an earlier one.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return headers


def merge_headers(
    current: dict[str, str], *, set_headers: dict[str, str], remove: Iterable[str]
) -> dict[str, str]:
    """Apply an edit: drop ``remove`` names, then add or replace ``set_headers`` (case-insensitively)."""
    dropped = {n.lower() for n in remove} | {n.lower() for n in set_headers}
    merged = {k: v for k, v in current.items() if k.lower() not in dropped}
    merged.update(set_headers)
    return merged

"""The hash chain: each event's hash covers its content and the previous event's hash.

``hash = sha256(prev_hash + "\\n" + canonical JSON of the chained fields)``. The canonical form
must come out the same from the values the writer had in hand and from the values read back from
SQLite or PostgreSQL, so each field is reduced to a representation both databases preserve:
times in UTC with microseconds, IP addresses in their compressed form, latency as a float, and
``detail`` with sorted keys (``audit.normalize`` makes it round-trip-stable before it is stored).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

GENESIS_HASH = "0" * 64

CHAINED_FIELDS = (
    "created_at", "event", "actor", "token_jti", "owner", "server", "tool", "session_id",
    "client_ip", "user_agent", "outcome", "status", "latency_ms", "detail",
)


def canonical_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_ip(value: str | None) -> str | None:
    if not value:
        return None
    return _canonical_ip(str(value))


@lru_cache(maxsize=16_384)
def _canonical_ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value.split("/")[0])
    except ValueError:
        return value
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _canonical_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "created_at":
        return canonical_time(value)
    if name == "client_ip":
        return canonical_ip(value)
    if name == "latency_ms":
        return float(value)
    if name == "status":
        return int(value)
    return value


def canonical_payload(fields: dict[str, Any]) -> str:
    content = {name: _canonical_field(name, fields.get(name)) for name in CHAINED_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(*, prev_hash: str, fields: dict[str, Any]) -> str:
    payload = canonical_payload(fields)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()

"""Tool pinning, the pure part: what a tool's definition is, its canonical form, hash and diff.

A pinned server's tool is listed and callable through the gateway only while its current
definition hashes to the approved one. The definition is the fields that say what a tool does
(``DEFINITION_FIELDS``); ``canonical`` serializes them with sorted keys and no insignificant
whitespace, so a cosmetic re-serialization by the upstream is not a change and any change in
wording is. ``ToolPins`` is the pinned state the gateway carries on ``UpstreamTarget``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFINITION_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
# A diff kept in an audit row or a pending change is cut to this many characters.
MAX_DIFF_CHARS = 8_000


def definition_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The pinned fields of a ``tools/list`` entry (absent and null fields are left out alike)."""
    return {key: tool[key] for key in DEFINITION_FIELDS if tool.get(key) is not None}


def canonical(definition: Mapping[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_hash(definition: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical form of ``definition``'s pinned fields."""
    return hashlib.sha256(canonical(definition_of(definition)).encode()).hexdigest()


def _lines(definition: Mapping[str, Any] | None) -> list[str]:
    if definition is None:
        return []
    # The canonical form, one key per line so a diff is readable (same keys, same order).
    text = json.dumps(definition_of(definition), sort_keys=True, indent=2, ensure_ascii=False)
    return text.splitlines()


def readable_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any], *, name: str = "") -> str:
    """A unified diff from the approved definition (None: none approved) to ``after``, bounded."""
    label = name or str(after.get("name", ""))
    diff = "\n".join(
        difflib.unified_diff(
            _lines(before), _lines(after), fromfile=f"approved/{label}", tofile=f"current/{label}",
            lineterm="",
        )
    )
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + "\n… (diff truncated)"
    return diff


@dataclass(frozen=True)
class ToolPins:
    """A pinned server's state as admission loads it: per tool, the approved hash and the hash
    of the definition last seen by any gateway process (empty until one is seen)."""

    approved: Mapping[str, str]
    last_seen: Mapping[str, str]

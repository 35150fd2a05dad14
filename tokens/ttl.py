"""Parse human TTLs ("90", "30m", "1h", "7d", "never") into timedeltas."""

from __future__ import annotations

import re
from datetime import timedelta

from tokens.exceptions import InvalidTokenRequest

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Far above any configurable maximum, far below timedelta's limit: keeps the arithmetic safe.
_MAX_SECONDS = 100 * 365 * 86400
_TTL_RE = re.compile(r"^\s*([0-9]{1,9})\s*([smhdw]?)\s*$")  # ASCII digits only, not "５９m"


def parse_ttl(value: str | int | None, *, name: str = "ttl") -> timedelta | None:
    """Return the TTL, or ``None`` for "never". Raises ``InvalidTokenRequest`` on nonsense."""
    if isinstance(value, bool):
        raise InvalidTokenRequest(f"{name} must be seconds or a duration like 30m, 1h, 7d.")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value or "").strip().lower()
        if text == "never":
            return None
        match = _TTL_RE.match(text)
        if not match:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise InvalidTokenRequest(f"{name} {shown!r} is not seconds or a duration like 30m, 1h, 7d.")
        seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise InvalidTokenRequest(f"{name} must be positive.")
    if seconds > _MAX_SECONDS:
        raise InvalidTokenRequest(f"{name} is longer than any token may live.")
    return timedelta(seconds=seconds)


def parse_grace(value: str | int | None) -> timedelta:
    """A rotation grace period: ``0`` (the default) or a duration; never "never"."""
    text = str(value if value is not None else "0").strip().lower()
    if text in ("", "0", "0s", "0m", "0h", "0d"):
        return timedelta(0)
    if text == "never":
        raise InvalidTokenRequest("The grace period must be a duration like 10m or 1h, not 'never'.")
    grace = parse_ttl(text, name="grace")
    if grace is None:  # pragma: no cover - "never" handled above
        raise InvalidTokenRequest("The grace period must be a duration.")
    return grace


def format_ttl(delta: timedelta | None) -> str:
    """The shortest exact spelling ``parse_ttl`` reads back: ``7d``, ``90m``, ``45s``, ``never``."""
    if delta is None:
        return "never"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

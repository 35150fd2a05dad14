"""Turn what a caller hands to ``record()`` into the stored form: masked, bounded, and stable.

Stable means the value survives a round trip through SQLite's text JSON and PostgreSQL's jsonb
unchanged, so the hash computed before the insert is the hash ``verify_audit`` recomputes later:

- jsonb keeps numbers as exact decimals, so an integral float printed in exponent form
  (``1e+16``) comes back as an integer; such floats are stored as the exact integer instead.
  ``-0.0`` becomes ``0.0``; NaN and infinities (not JSON) become strings.
- jsonb and PostgreSQL text refuse NUL characters and lone surrogates; they are replaced.
- keys become strings, tuples and sets become lists, times become ISO 8601 strings in UTC.

Secrets: every string goes through ``core.secrets_mask.mask_secrets``; values under
credential-shaped keys (``Authorization``, ``password``, ``api_key``…) that the pattern rule does
not recognise are replaced entirely, since a header value alone (``Basic dXNl…``) has no marker.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.utils import timezone

from audit.chain import canonical_ip
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent
from core.secrets_mask import MASK, mask_secrets

MAX_DETAIL_CHARS = 32_768
OUTCOMES = frozenset(AuditEvent.Outcome.values)
_EXACT_FLOAT_LIMIT = 2.0**53

_SECRET_KEYS = re.compile(
    r"(?i)^(?:password|passwd|secret|client[-_]?secret|private[-_]?key|signing[-_]?key|cookie|"
    r"set[-_]cookie|session[-_]?key|csrf[-_]?token|credentials?)$"
)
_CREDENTIAL_KEYS = re.compile(
    r"(?i)^(?:(?:http[-_])?(?:proxy[-_])?authorization|x[-_]api[-_]key|api[-_]?key|key|token|"
    r"access[-_]?token|refresh[-_]?token|id[-_]?token|bearer|raw[-_]?token|secret[-_]?key)$"
)
# A value that is already a display form: ``gth_<jti8>…``, ``gthk_<id>_…``, ``gthk_<id>_***``, ``***``.
_DISPLAY_FORM = re.compile(r"^(?:[A-Za-z]+\s+)?(?:gthk?_[A-Za-z0-9_-]{0,24}(?:…|\*\*\*)|\*\*\*)$")

FIELD_LIMITS = {
    "event": 64, "actor": 150, "token_jti": 64, "owner": 150, "server": 64, "tool": 200,
    "session_id": 64, "user_agent": 300,
}


def clean_text(value: str) -> str:
    """Text both databases store as given: no NUL, no lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


@lru_cache(maxsize=16_384)
def _masked_short(value: str) -> str:
    return clean_text(mask_secrets(clean_text(value)))


def masked_text(value: str) -> str:
    """``value`` masked and cleaned. Short strings repeat a lot (user agents, names, tools), so
    their masked form is cached: the gateway logs thousands of events a second."""
    if not value:
        return value
    if len(value) <= 256:
        return _masked_short(value)
    return clean_text(mask_secrets(clean_text(value)))


def _stable_float(value: float) -> float | int | str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0.0:
        return 0.0
    if value.is_integer() and abs(value) >= _EXACT_FLOAT_LIMIT:
        return int(value)
    return value


def _redact_credential(value: Any) -> Any:
    if not isinstance(value, str):
        return MASK if value not in (None, "") else value
    masked = masked_text(value)
    if masked != value or _DISPLAY_FORM.match(masked) or not masked:
        return masked
    return MASK


def stable_detail(value: Any, *, key: str = "") -> Any:
    """``value`` as JSON-safe, masked data that round-trips through both databases unchanged."""
    if key and _SECRET_KEYS.match(key):
        return MASK if value not in (None, "") else value
    if key and _CREDENTIAL_KEYS.match(key):
        return _redact_credential(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return masked_text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _stable_float(value)
    if isinstance(value, dict):
        return {masked_text(str(k)): stable_detail(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable_detail(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((stable_detail(v) for v in value), key=repr)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return stable_detail(value.value)
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return masked_text(bytes(value).decode("utf-8", "replace"))
    return masked_text(str(value))


def bounded_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """Keep one event's detail to a size the console and exports can show."""
    text = json.dumps(detail, ensure_ascii=False)
    if len(text) <= MAX_DETAIL_CHARS:
        return detail
    return {"truncated": True, "original_chars": len(text), "preview": text[: MAX_DETAIL_CHARS // 2]}


@lru_cache(maxsize=16_384)
def _parsed_ip(text: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return canonical_ip(text)


def normalize_ip(value: str | None) -> tuple[str | None, str | None]:
    """(stored address, rejected raw value) — an unparsable address is kept in detail instead."""
    if value in (None, ""):
        return None, None
    text = clean_text(str(value)).strip()
    address = _parsed_ip(text)
    if address is None:
        return None, masked_text(text)[:100]
    return address, None


def _status(value: int | None, detail: dict[str, Any]) -> int | None:
    if value is None:
        return None
    status = int(value)
    if not 0 <= status <= 32767:  # PositiveSmallIntegerField on every backend
        detail["status_unparsed"] = status
        return None
    return status


def event_fields(
    *,
    event: str,
    actor: str = "",
    token_jti: str = "",
    owner: str = "",
    server: str = "",
    tool: str = "",
    session_id: str = "",
    client_ip: str | None = None,
    user_agent: str = "",
    outcome: str = "success",
    status: int | None = None,
    latency_ms: float | None = None,
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The model field values for one event, ready to hash and insert."""
    if not event:
        raise InvalidAuditEvent("An audit event needs a name.")
    outcome = str(outcome)
    if outcome not in OUTCOMES:
        raise InvalidAuditEvent(f"Unknown outcome {outcome!r}; use one of {sorted(OUTCOMES)}.")
    if detail is not None and not isinstance(detail, dict):
        detail = {"value": detail}
    stored_detail = stable_detail(detail or {})
    ip, rejected_ip = normalize_ip(client_ip)
    if rejected_ip is not None:
        stored_detail["client_ip_unparsed"] = rejected_ip
    text = {
        "event": event, "actor": actor, "token_jti": token_jti, "owner": owner, "server": server,
        "tool": tool, "session_id": session_id, "user_agent": user_agent,
    }
    fields: dict[str, Any] = {
        name: masked_text(str(value or ""))[: FIELD_LIMITS[name]] for name, value in text.items()
    }
    moment = created_at or timezone.now()
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    latency = None
    if latency_ms is not None and math.isfinite(float(latency_ms)):
        latency = round(float(latency_ms), 3)
    fields.update(
        created_at=moment.astimezone(UTC),
        client_ip=ip,
        outcome=outcome,
        status=_status(status, stored_detail),
        latency_ms=latency,
        detail=bounded_detail(stored_detail),
    )
    return fields

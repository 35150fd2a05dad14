"""JSON log lines on stdout, with every secret masked before it is written.

Masking happens twice on purpose: ``MaskSecretsFilter`` cleans the record (so any handler or
formatter downstream is safe), and ``JsonFormatter`` masks every string of the finished object
(so a handler configured without the filter still cannot write a credential).
"""

from __future__ import annotations

import datetime
import enum
import logging
import logging.config
import traceback
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from core.secrets_mask import is_credential_field, mask_field, mask_secrets

_JSON_SCALARS = (bool, int, float, type(None), datetime.date, datetime.time, enum.Enum)


def configure(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG``: apply ``LOGGING`` and send ``warnings`` through it too (as JSON)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, then extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # A warning (``captureWarnings``) arrives as warnings.formatwarning's text: several lines
        # with the source line indented (Celery's "running the worker with superuser privileges").
        # One sentence in one line reads and greps like every other message.
        if log_data.get("logger") == "py.warnings" and isinstance(log_data.get("message"), str):
            log_data["message"] = " ".join(log_data["message"].split())
        # uvicorn adds its message again with terminal colour codes: noise in a JSON line.
        return {str(key): masked_value(value) for key, value in log_data.items() if key != "color_message"}


class MaskSecretsFilter(logging.Filter):
    """Rewrite the message, the traceback and every extra so no credential reaches a log sink."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask_secrets(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED:
                record.__dict__[key] = masked_value(value)
        if record.exc_info:
            record.exc_text = mask_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def masked_value(value: object) -> object:
    """``value`` with every string inside masked; unknown objects become masked ``str()``."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (bytes, bytearray)):
        return mask_secrets(bytes(value).decode("utf-8", errors="replace"))
    if isinstance(value, dict):
        return {mask_secrets(str(k)): _masked_field(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, bytes)):
        # A (name, value) pair, as in ASGI or httpx header lists.
        return [masked_value(value[0]), _masked_field(value[0], value[1])]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [masked_value(v) for v in value]
    return mask_secrets(str(value))


def _masked_field(name: object, value: object) -> object:
    if isinstance(name, (str, bytes)) and is_credential_field(name) and isinstance(value, (str, bytes)):
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
        return mask_field(name, text)
    return masked_value(value)


_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

"""Strict environment reading for settings.py: a bad value stops startup and names the variable.

django-environ does the casting. On top of it: a value that does not parse raises
``ImproperlyConfigured`` naming the variable (not a bare ``ValueError``), a boolean must be a
recognisable boolean (``GATEHOUSE_DEBUG=maybe`` is an error, not False), an empty value means
"unset", and ``$OTHER`` values are taken literally (a generated secret may start with ``$``).
"""

from __future__ import annotations

import re
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})
# Names whose values must not be echoed in an error message.
_SENSITIVE = re.compile(r"SECRET|KEY|PASSWORD|TOKEN|URL", re.IGNORECASE)
_CAST_NAMES = {bool: "a boolean (true/false)", int: "an integer", float: "a number", list: "a list"}
_RATE_RE = re.compile(r"^\d+/(s|m|h|d)[a-z]*$")


class StrictEnv(environ.Env):
    """``environ.Env`` that fails loudly, naming the variable."""

    def get_value(self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET,
                  parse_default: bool = False) -> Any:
        raw = self.ENVIRON.get(var, "").strip()
        if not raw:
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable.")
            return default
        if cast is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise self._invalid(var, raw, cast)
            return raw.lower() in _TRUE
        if cast is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        try:
            return self.parse_value(raw, cast)
        except (TypeError, ValueError) as exc:
            raise self._invalid(var, raw, cast) from exc

    def positive_int(self, var: str, *, default: int) -> int:
        value = self.int(var, default=default)
        if value < 1:
            raise ImproperlyConfigured(f"{var} must be a positive integer (got {value}).")
        return value

    def positive_float(self, var: str, *, default: float) -> float:
        value = self.float(var, default=default)
        if not value > 0:
            raise ImproperlyConfigured(f"{var} must be a positive number (got {value}).")
        return value

    def rate(self, var: str, *, default: str) -> str:
        """A request rate such as ``600/m`` (count per second, minute, hour or day)."""
        value = self.str(var, default=default).strip()
        if not _RATE_RE.match(value):
            raise ImproperlyConfigured(f"{var} must look like 600/m (count/s|m|h|d), got {value!r}.")
        return value

    def choice(self, var: str, *, default: str, choices: list[str]) -> str:
        """One of ``choices``, matched case-insensitively and returned as spelled there."""
        value = self.str(var, default=default).strip()
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise ImproperlyConfigured(f"{var} must be one of {', '.join(choices)} (got {value!r}).")

    @staticmethod
    def _invalid(var: str, raw: str, cast: Any) -> ImproperlyConfigured:
        expected = _CAST_NAMES.get(cast, getattr(cast, "__name__", "valid"))
        shown = "" if _SENSITIVE.search(var) else f" (got {raw!r})"
        return ImproperlyConfigured(f"{var} must be {expected}{shown}.")

"""The suite's one polling helper: wait for the thing itself, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], *, timeout: float = 5.0, every: float = 0.02,
               what: str | Callable[[], str] = "condition") -> T:
    """Call ``condition`` until it returns something truthy and return that; fail after ``timeout``
    seconds naming ``what`` (a string, or a callable that describes the last state seen)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {described}")
        time.sleep(every)

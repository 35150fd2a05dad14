"""Fixtures for the audit tests: the audit log stream and a small event factory."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from audit.models import AuditEvent
from audit.services import record


@pytest.fixture
def audit_log() -> Iterator[io.StringIO]:
    """What the audit logger writes to stdout, through the configured handler, filter and
    formatter (the handler is pointed at a buffer for the test)."""
    handlers = [h for h in logging.getLogger("gatehouse").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "settings.LOGGING must give the gatehouse logger a stdout handler"
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


@pytest.fixture
def make_event(db) -> Callable[..., AuditEvent]:
    """``make_event(event="mcp.request", server="demo", ...)``: one event through the writer."""

    def _make(**fields: Any) -> AuditEvent:
        fields.setdefault("event", "mcp.request")
        return record(**fields)

    return _make

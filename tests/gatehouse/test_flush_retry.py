"""The test harness retries a database flush that a live server's late query deadlocked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError

from tests.support import database
from tests.support.database import _retrying


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """The back-off between attempts is real time the retries do not need to be proven."""
    monkeypatch.setattr(database, "time", SimpleNamespace(sleep=lambda seconds: None))


def _failing(errors: list[BaseException]):
    calls = []

    def flush(_case) -> None:
        calls.append(1)
        if errors:
            raise errors.pop(0)

    return flush, calls


def _command_error(message: str) -> CommandError:
    error = CommandError("Database couldn't be flushed")
    error.__cause__ = OperationalError(message)
    return error


def test_a_deadlocked_flush_is_retried_until_it_succeeds():
    flush, calls = _failing([_command_error("deadlock detected"), _command_error("deadlock detected")])
    _retrying(flush)(object())
    assert len(calls) == 3


def test_any_other_flush_error_fails_at_once():
    flush, calls = _failing([_command_error('relation "x" does not exist')])
    with pytest.raises(CommandError):
        _retrying(flush)(object())
    assert len(calls) == 1


def test_a_flush_that_keeps_deadlocking_fails_in_the_end():
    flush, calls = _failing([_command_error("deadlock detected") for _ in range(10)])
    with pytest.raises(CommandError):
        _retrying(flush)(object())
    assert len(calls) == 5

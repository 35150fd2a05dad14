"""Make the per-test database flush survive live servers that are still winding down.

A transactional test ends by TRUNCATE-ing every table, but a live daphne or Celery worker that
shares the test database may still be finishing the test's work (a stream the client just closed
writes its audit row and ends its session). On PostgreSQL the TRUNCATE and such a query can lock
the same tables in opposite order; the server then aborts one of them as a deadlock, and if it
picks the TRUNCATE the *next* test would start on a dirty database. The flush is therefore retried
after such an abort; any other error still fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import TransactionTestCase

_TRANSIENT = ("deadlock detected", "database is locked")
_ATTEMPTS = 5


def _is_transient(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OperationalError) and any(word in str(cause) for word in _TRANSIENT):
            return True
        cause = cause.__cause__
    return False


def _retrying(flush: Callable[[TransactionTestCase], None]) -> Callable[[TransactionTestCase], None]:
    def _fixture_teardown(self: TransactionTestCase) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return flush(self)
            except (CommandError, OperationalError) as exc:
                if attempt == _ATTEMPTS or not _is_transient(exc):
                    raise
                time.sleep(0.2 * attempt)

    _fixture_teardown.__wrapped__ = flush  # type: ignore[attr-defined]
    return _fixture_teardown


def install_flush_retry() -> None:
    """Wrap ``TransactionTestCase``'s flush once; ``TestCase`` (rollback) is not affected."""
    current = TransactionTestCase._fixture_teardown
    if not hasattr(current, "__wrapped__"):
        TransactionTestCase._fixture_teardown = _retrying(current)  # type: ignore[method-assign]

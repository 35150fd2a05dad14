"""The database being unreachable: one definition for every edge that must say so.

When PostgreSQL is down (or a SQLite file cannot be opened) the REST API and the gateway answer
503 with ``Retry-After`` and a JSON body, the console a plain 503 page, and management commands
one line on stderr — never a traceback or an HTML 500 page, and never the database URL (it may
carry a password). Django opens a fresh connection per request (``CONN_MAX_AGE=0``), so every edge
recovers by itself on the first request after the database is back.
"""

from __future__ import annotations

from django.db.utils import InterfaceError, OperationalError

# The exceptions Django raises when it cannot reach or talk to the database.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
ERROR_CODE = "database_unavailable"
DETAIL = "Gatehouse cannot reach its database, so the request was not completed. Try again shortly."


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE_ERRORS)

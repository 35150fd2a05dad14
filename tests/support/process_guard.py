"""The fast tier starts no process: a test outside ``integration``/``e2e`` that starts a server, an
interpreter or a Node client fails, naming the marker it needs.

Short tool calls (``git ls-files``, ``sh -c printf``) stay allowed: they cost milliseconds. The
guard wraps setup, call and teardown, so a session fixture a fast test pulls in is caught too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

_SLOW_PROGRAMS = ("python", "node", "npx", "npm", "daphne", "uvicorn", "celery", "redis-server",
                  "chromium", "postgres", "pg_ctl", "make", "bash", "honcho")
_SLOW_MARKERS = ("integration", "e2e")


class ProcessInFastTier(AssertionError):
    pass


def _program(args: object) -> str:
    if isinstance(args, (str, bytes)):
        first = os.fsdecode(args).split()[0] if args else ""
    else:
        first = os.fsdecode(next(iter(args), ""))  # type: ignore[call-overload]
    return os.path.basename(first)


def _is_slow(args: object) -> bool:
    program = _program(args)
    return program == os.path.basename(sys.executable) or program.startswith(_SLOW_PROGRAMS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if any(item.get_closest_marker(name) for name in _SLOW_MARKERS):
        return (yield)
    original = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        if _is_slow(args):
            raise ProcessInFastTier(
                f"{item.nodeid} starts {_program(args)!r}: mark it @pytest.mark.integration")
        return original(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]
    try:
        return (yield)
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]

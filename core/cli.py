"""What the management commands share: who the actor is, and turning domain errors into CLI errors."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError

from core.exceptions import GatehouseError


def cli_actor() -> str:
    """Audit actor for a command run: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return "cli"


@contextmanager
def domain_errors() -> Iterator[None]:
    """Report a domain error as a one-line message on stderr with a non-zero exit."""
    try:
        yield
    except GatehouseError as exc:
        raise CommandError(exc.detail) from exc

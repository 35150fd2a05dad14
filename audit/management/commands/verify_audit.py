"""``manage.py verify_audit``: check the audit hash chain; exit non-zero naming the first break."""

from __future__ import annotations

import time
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.integrity import verify_chain


def _anchor(value: str) -> tuple[int, str]:
    event_id, sep, digest = value.partition(":")
    if not sep or not event_id.isdigit() or len(digest) != 64:
        raise ArgumentTypeError("an anchor is ID:HASH (the id and 64-hex hash of an event)")
    return int(event_id), digest.lower()


class Command(BaseCommand):
    help = "Verify the audit log's hash chain. Exits 1 and names the first broken event."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--anchor", action="append", type=_anchor, default=[], metavar="ID:HASH",
            help="An event id and hash recorded elsewhere (e.g. from the JSON log); repeatable.",
        )

    def handle(self, *args: Any, anchor: list[tuple[int, str]], **options: Any) -> None:
        started = time.monotonic()
        report = verify_chain(anchors=anchor)
        for note in report.notes:
            self.stderr.write(f"note: {note}")
        if report.broken is not None:
            where = f"event #{report.broken.event_id}" if report.broken.event_id is not None else "the log"
            name = f" ({report.broken.event})" if report.broken.event else ""
            raise CommandError(
                f"BROKEN at {where}{name}: {report.broken.reason}. "
                f"{report.count} events verified before it."
            )
        elapsed = time.monotonic() - started
        if report.count == 0:
            self.stdout.write(f"OK: the audit log is empty ({elapsed:.1f}s).")
            return
        self.stdout.write(
            f"OK: {report.count} events verified (#{report.first_id}..#{report.head_id}) in {elapsed:.1f}s; "
            f"head #{report.head_id} {report.head_hash}"
        )

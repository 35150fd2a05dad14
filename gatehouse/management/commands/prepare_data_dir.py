"""Create the data dir, the filesystem broker's folders and the generated secret key (once).

The explicit step that replaces what importing settings used to do as a side effect (see
core/data_dir.py). ``make run`` runs it before ``migrate``; ``manage.py serve`` runs it before
serving; the compose ``migrate`` service runs it first. Running it again changes nothing: the key
is generated only when there is none, so sessions and credentials encrypted at rest survive.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from core.data_dir import DataDir


class Command(BaseCommand):
    help = (
        "Create GATEHOUSE_DATA_DIR, the filesystem broker's folders and the generated secret key "
        "where this configuration needs them. Idempotent; make run and gatehouse serve run it."
    )
    # The system checks would stop this command for exactly what it is about to create.
    requires_system_checks = []

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = DataDir.from_settings(settings)
        created = data_dir.prepare()
        if not created:
            if options["verbosity"] > 1:
                self.stdout.write(f"The data dir {data_dir.root} is ready; nothing to create.")
            return
        if options["verbosity"] > 0:
            inside = data_dir.names(created)
            detail = f": created {inside}" if inside else ""
            self.stdout.write(f"Prepared the data dir {data_dir.root}{detail}")

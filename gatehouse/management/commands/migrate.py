"""``manage.py migrate``: Django's, refusing a data dir that was never prepared.

Settings no longer create the data dir on import, so on a fresh checkout the embedded SQLite
database's folder does not exist yet. Django's migrate would stop inside its own model checks on
"unable to open database file"; this one stops first, naming what is missing and the step to run
(``prepare_data_dir``, which ``make run`` runs before migrating). Other commands report the same
through the ``gatehouse.E001`` system check; migrate needs this because its database checks
connect before any check result is shown.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from core.data_dir import DataDir


class Command(DjangoMigrateCommand):
    def check(self, *args: Any, **kwargs: Any) -> Any:
        try:
            DataDir.from_settings(settings).require_prepared()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        return super().check(*args, **kwargs)

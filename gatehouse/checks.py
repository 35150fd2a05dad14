"""System checks for what settings cannot verify at import without touching the disk."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from core.data_dir import DataDir


def data_dir_prepared(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gatehouse.E001: the data dir lacks what this configuration reads from it.

    Settings never create the data dir or the generated secret key (importing them writes
    nothing), so on a fresh checkout ``manage.py migrate`` stops here, naming the step to run,
    rather than on "unable to open database file" or an empty SECRET_KEY. ``prepare_data_dir``
    and ``serve`` skip this check: the first makes what it asks for, the second runs it first.
    """
    data_dir = DataDir.from_settings(settings)
    missing = data_dir.missing()
    if not missing:
        return []
    return [Error(data_dir.describe(missing), hint=data_dir.hint(missing), id="gatehouse.E001")]

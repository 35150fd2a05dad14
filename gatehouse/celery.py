"""Celery app: ``celery -A gatehouse worker --beat`` runs the periodic sweeps."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")

app = Celery("gatehouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _say_as_log_record(msg: str, f: object = None) -> None:
    """Celery writes its shutdown notices ("worker: Warm shutdown (MainProcess)") raw to stdout,
    bypassing logging; as records they come out as one JSON line like everything else."""
    logging.getLogger("celery.apps.worker").warning(str(msg).strip())


@celeryd_init.connect
def _log_shutdown_notices(**_: Any) -> None:
    """In a worker only (the module costs web processes start-up time): the one hook Celery
    offers for those notices is its module-level writer."""
    import celery.apps.worker

    celery.apps.worker.safe_say = _say_as_log_record  # type: ignore[attr-defined]  # not in the stubs

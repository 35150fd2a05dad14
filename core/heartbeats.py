"""Heartbeats of background work: a periodic job says it ran, ``/ready`` says when one stopped.

The session sweep (``gateway.tasks.expire_sessions``) beats ``SWEEP`` each time a worker runs it,
which needs both Celery beat (to queue it every ``GATEHOUSE_SWEEP_SECONDS``) and a worker (to run
it). Without that beat, sessions are not expired, dead tokens' sessions and upstream DELETEs wait,
and nothing else would say so.

The row lives in the database, the one store every web instance, worker and beat share.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core.models import Heartbeat

SWEEP = "session-sweep"
# A sweep missed this many times in a row means no worker or no beat.
MISSED_SWEEPS = 3
# Slack on top, for a beat that starts late.
SLACK_SECONDS = 2

# When this process started (near enough: the module is imported with the URLconf). A fresh
# deployment has not swept yet; it is not reported stale before it could have swept.
_STARTED = time.monotonic()


def beat(name: str, *, at: datetime | None = None) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": at or timezone.now()})


def last(name: str) -> datetime | None:
    return Heartbeat.objects.filter(name=name).values_list("at", flat=True).first()


def sweep_limit_seconds() -> float:
    return MISSED_SWEEPS * settings.SWEEP_SECONDS + SLACK_SECONDS


def sweep_status(*, now: datetime | None = None) -> str:
    """``"ok"``, or why the sweeps look stopped (``"no session sweep for 312 s"``)."""
    limit = sweep_limit_seconds()
    seen = last(SWEEP)
    age = None if seen is None else ((now or timezone.now()) - seen).total_seconds()
    if age is not None and age <= limit:
        return "ok"
    uptime = time.monotonic() - _STARTED
    if uptime <= limit:
        return "ok"  # too early to tell: the first sweep may still be on its way
    if age is None:
        return f"no session sweep yet ({int(uptime)} s since start): is a Celery worker with beat running?"
    return f"no session sweep for {int(age)} s: is a Celery worker with beat running?"

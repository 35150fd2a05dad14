"""The project package's one table: heartbeats of background work, for ``/ready``."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """When a periodic job last ran (``gatehouse.heartbeats``); one row per job name."""

    name = models.CharField(primary_key=True, max_length=64)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at.isoformat()}"

"""The foundations' tables: heartbeats of background work (for ``/ready``) and the changes feed.

They belong to the ``gatehouse`` app (its label, its migrations); ``gatehouse.models`` lists them.
"""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """When a periodic job last ran (``core.heartbeats``); one row per job name."""

    name = models.CharField(primary_key=True, max_length=64)
    at = models.DateTimeField()

    class Meta:
        app_label = "gatehouse"

    def __str__(self) -> str:
        return f"{self.name} at {self.at.isoformat()}"


class Change(models.Model):
    """One change the gateway's per-process caches must forget (``core.changes``).

    Written in the transaction of the change itself, so a committed revocation always has its
    row; every gateway process reads rows newer than the last it saw, every 50 ms.
    """

    id = models.BigAutoField(primary_key=True)
    # What changed: a kind of ``core.changes.KINDS``; ``key`` names which one ("" = all).
    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=200, blank=True, default="")
    at = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "gatehouse"

    def __str__(self) -> str:
        return f"{self.kind}:{self.key or '*'} at {self.at.isoformat()}"

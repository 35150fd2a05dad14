"""Checks behind /ready: each dependency answers "ok" or a short reason without secrets.

A probe must answer quickly even when a dependency hangs, so every check has a time limit, and
it reports only the exception's type: messages can contain connection URLs with passwords.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from gatehouse import heartbeats

logger = logging.getLogger("gatehouse.readiness")

CHECK_TIMEOUT_SECONDS = 3.0
OK = "ok"


def check_readiness() -> dict[str, str]:
    """``{"database": "ok", "channel_layer": "ok", "broker": "error: …"}``."""
    results = {"database": _database(), "channel_layer": _channel_layer(), "broker": _broker()}
    for name, result in results.items():
        if result != OK:
            logger.warning("readiness check failed", extra={"check": name, "result": result})
    return results


def _failure(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure
        return _failure(exc)
    return OK


async def _channel_layer_roundtrip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise LookupError("no channel layer configured")
    # Both layers we run (in-memory, Redis) take a prefix; BaseChannelLayer's signature does not.
    channel = await layer.new_channel("ready.")  # type: ignore[call-arg]
    await layer.send(channel, {"type": "ready.ping"})
    await layer.receive(channel)
    # A receive that is cancelled is how a channel layer learns a consumer left: this drops the
    # probe channel's queue (and the Redis subscription) instead of keeping one per probe.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.01)


def _channel_layer() -> str:
    async def bounded() -> None:
        await asyncio.wait_for(_channel_layer_roundtrip(), timeout=CHECK_TIMEOUT_SECONDS)

    try:
        async_to_sync(bounded)()
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    return OK


def _broker() -> str:
    from gatehouse.celery import app

    try:
        with app.connection_for_write() as conn:
            # kombu takes the timeout in seconds as a float; its stub says int.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                   timeout=CHECK_TIMEOUT_SECONDS)  # type: ignore[arg-type]
            if conn.transport_cls == "filesystem":
                _check_folder_writable(Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])))
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    return OK


def _check_folder_writable(folder: Path) -> None:
    """The filesystem transport "connects" to anything; what matters is that queueing works."""
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise PermissionError("broker folder missing or not writable")


# --- Background work: a separate section, so it never changes what the checks above mean -----


def check_background() -> dict[str, str]:
    """``{"sweeps": "ok"}``, or why the periodic session sweep looks stopped (no worker or no beat).

    Reported in ``/ready``'s body; it decides the status only with ``GATEHOUSE_READY_REQUIRES_SWEEPS``
    (a stopped worker should not take every web instance out of a load balancer). A process is
    given a few sweep intervals after it starts before anything is called stale.
    """
    try:
        sweeps = heartbeats.sweep_status()
    except Exception as exc:  # noqa: BLE001 - the database check above names the cause
        sweeps = _failure(exc)
    if sweeps != OK:
        logger.warning("background work looks stopped", extra={"check": "sweeps", "result": sweeps})
    return {"sweeps": sweeps}

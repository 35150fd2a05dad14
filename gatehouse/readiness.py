"""Checks behind /ready: each dependency answers "ok" or a short reason without secrets.

A probe must answer quickly even when a dependency hangs, so every check has a time limit, and
it reports only the exception's type: messages can contain connection URLs with passwords. A
dependency that lives on Redis says so in its failure (``error: ConnectionError (redis)``), so a
Redis outage reads as one cause, not three.

The cache is asked directly (``ping``), not through the per-process stand-in that keeps the
gateway and the API serving while Redis is down (see ``core.cache``).

A load balancer probes every few seconds: a check's failure is logged when it begins (or its
reason changes) and its recovery once, not on every probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from core import heartbeats
from core.layer import outage as layer_outage

logger = logging.getLogger("gatehouse.readiness")

CHECK_TIMEOUT_SECONDS = 3.0
OK = "ok"


def check_readiness() -> dict[str, str]:
    """``{"database": "ok", "cache": "ok", "channel_layer": "ok", "broker": "error: …"}``."""
    results = {
        "database": _database(), "cache": _cache(), "channel_layer": _channel_layer(), "broker": _broker(),
    }
    _log_changes(results)
    return results


_last: dict[str, str] = {}
_last_lock = threading.Lock()


def _log_changes(results: dict[str, str]) -> None:
    with _last_lock:
        changed = {name: result for name, result in results.items() if _last.get(name, OK) != result}
        _last.update(results)
    for name, result in changed.items():
        if result == OK:
            logger.warning("readiness check passes again", extra={"check": name})
        else:
            logger.warning("readiness check failed", extra={"check": name, "result": result})


def _failure(exc: BaseException, *, on_redis: bool = False) -> str:
    return f"error: {type(exc).__name__}{' (redis)' if on_redis else ''}"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure
        return _failure(exc)
    return OK


def _cache() -> str:
    backend = caches["default"]
    try:
        ping = getattr(backend, "ping", None)
        if ping is not None:
            ping()
        else:
            backend.get("gatehouse:ready")
    except Exception as exc:  # noqa: BLE001
        return _failure(exc, on_redis=isinstance(backend, RedisCache))
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
        backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
        return _failure(exc, on_redis="redis" in backend.lower())
    layer_outage.answered()  # the gateway's best-effort layer calls may use it again
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
        return _failure(exc, on_redis=str(app.conf.broker_url or "").startswith("redis"))
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

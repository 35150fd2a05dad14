"""Channel-layer calls a request can live without.

The gateway uses the channel layer (Redis when scaled out) for one thing only: delivering a legacy
SSE session's refusals to whichever instance holds its event stream. Token checks, stream
re-checks and revocation all go through the database, so a layer outage must not fail a request:
each call here is bounded by ``CALL_TIMEOUT_SECONDS``, a failure is logged once per outage, and
while the layer is down it is tried again at most every ``RETRY_SECONDS`` (not by every request).

channels-redis itself logs a traceback every second its pub/sub connection is down;
``PubSubOutageFilter`` (in ``LOGGING``) turns those into this outage, logged once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings

from core.cache import UNAVAILABLE
from core.outage import Outage

T = TypeVar("T")

logger = logging.getLogger("gatehouse.gateway")

CALL_TIMEOUT_SECONDS = 2.0
_LAYER_DOWN: tuple[type[BaseException], ...] = (*UNAVAILABLE, TimeoutError)
RETRY_SECONDS = 2.0

outage = Outage(
    what="Channel layer",
    meanwhile="legacy SSE sessions cannot receive refusals from other requests until it answers",
    target=settings.REDIS_URL,
    retry_seconds=RETRY_SECONDS,
)


async def best_effort(call: Callable[..., Awaitable[T]], *args: Any, cleanup: bool = False) -> T | None:
    """``await call(*args)``, or None when the layer is down or fails (logged once per outage).

    A ``cleanup`` (leaving a group) is tried even during an outage: it drops the process's own
    bookkeeping before it talks to Redis, and skipping it would leak that.
    """
    if not (outage.should_try() or cleanup):
        return None
    try:
        # asyncio.timeout, not wait_for: 3.11's wait_for returns a result that lands together
        # with a cancel and drops the cancel (a stream ended by its watch would go on).
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
            result = await call(*args)
    except _LAYER_DOWN as exc:
        outage.failed(exc)
        return None
    except Exception:  # not an outage but a fault of ours: logged in full, the request goes on
        logger.exception("channel layer call failed", extra={"call": getattr(call, "__qualname__", "")})
        return None
    outage.answered()
    return result


async def join_group(layer: Any, group: str) -> str | None:
    """A new channel of this process in ``group``, or None when the layer cannot do it now."""

    async def join() -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    return await best_effort(join)


class PubSubOutageFilter(logging.Filter):
    """For the ``channels_redis.pubsub`` logger: a Redis connection failure it logs (its receive
    loop retries every second) counts toward the layer's outage, which is logged once; any other
    record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not isinstance(exc, UNAVAILABLE):
            return True
        outage.failed(exc)
        return False

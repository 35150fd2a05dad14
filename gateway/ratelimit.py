"""Fixed-window rate limits over Django's cache (Redis when configured, so shared by instances).

While Redis is unreachable the cache answers from a per-process stand-in (``gatehouse.cache``):
the same windows and limits, counted per process, instead of failing every request.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache

from gatehouse import metrics
from gatehouse.cache import count_hit
from gateway.errors import RateLimited

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"600/m"`` → (600, 60); an empty rate or ``off`` disables the limit."""
    rate = (rate or "").strip().lower()
    if rate in ("", "off", "none", "0"):
        return None
    count, _, period = rate.partition("/")
    try:
        limit = int(count)
        seconds = _PERIODS[period or "s"] if not period[:1].isdigit() else int(period)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"Bad rate {rate!r}: use N/s, N/m, N/h or N/d.") from exc
    return limit, seconds


def hit(*, bucket: str, key: str, rate: str) -> None:
    """Count one request for ``key``; raise ``RateLimited`` once it is over ``rate``."""
    parsed = parse_rate(rate)
    if parsed is None or not key:
        return
    limit, period = parsed
    now = time.time()
    window = int(now // period)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    count = count_hit(cache, f"gw:rl:{bucket}:{digest}:{window}", timeout=period + 1)
    if count > limit:
        metrics.get().rate_limited.labels(limit=bucket).inc()
        retry_after = math.ceil((window + 1) * period - now)
        raise RateLimited(
            f"Too many requests for this {bucket}; retry in {retry_after} s.",
            retry_after=retry_after,
            first_in_window=count == limit + 1,
        )

"""Fixed-window rate limits over Django's cache (Redis when configured, so shared by instances).

While Redis is unreachable the cache answers from a per-process stand-in (``core.cache``):
the same windows and limits, counted per process, instead of failing every request.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.cache import cache

from core import metrics
from core.cache import acount_hits, count_hit
from gateway.request.refusals import RateLimited

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


@dataclass(frozen=True)
class _Hit:
    bucket: str
    cache_key: str
    limit: int
    period: int
    now: float

    @property
    def window(self) -> int:
        return int(self.now // self.period)


def _plan(bucket: str, key: str, rate: str) -> _Hit | None:
    parsed = parse_rate(rate)
    if parsed is None or not key:
        return None
    limit, period = parsed
    now = time.time()
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return _Hit(bucket=bucket, cache_key=f"gw:rl:{bucket}:{digest}:{int(now // period)}", limit=limit,
                period=period, now=now)


def _judge(hit: _Hit, count: int) -> None:
    if count > hit.limit:
        metrics.get().rate_limited.labels(limit=hit.bucket).inc()
        retry_after = math.ceil((hit.window + 1) * hit.period - hit.now)
        raise RateLimited(
            f"Too many requests for this {hit.bucket}; retry in {retry_after} s.",
            retry_after=retry_after,
            first_in_window=count == hit.limit + 1,
            bucket=hit.bucket,
        )


def hit(*, bucket: str, key: str, rate: str) -> None:
    """Count one request for ``key``; raise ``RateLimited`` once it is over ``rate``."""
    planned = _plan(bucket, key, rate)
    if planned is not None:
        _judge(planned, count_hit(cache, planned.cache_key, timeout=planned.period + 1))


async def hit_all(hits: Sequence[tuple[str, str, str]]) -> None:
    """``hit`` for each ``(bucket, key, rate)``, counted together (one Redis round trip that does
    not block the event loop); the first over its rate, in the order given, is raised."""
    planned = [each for each in (_plan(*hit) for hit in hits) if each is not None]
    if not planned:
        return
    counts = await acount_hits(cache, [(each.cache_key, each.period + 1) for each in planned])
    for each, count in zip(planned, counts, strict=True):
        _judge(each, count)

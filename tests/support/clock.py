"""The suite's fake clock for the rate limiter's fixed windows: no test waits for the next minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.admission import ratelimit

# 20 s into a minute (and an hour, and a day): no window ends unless the test moves the clock.
WINDOW_START_PLUS_20S = 960_020.0


class RateClock:
    """Stands in for the ``time`` module the rate limiter reads; ``advance`` moves it."""

    def __init__(self, now: float = WINDOW_START_PLUS_20S) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rate_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[RateClock]:
    """The rate limiter's wall clock, stopped 20 s into a window, for this test only."""
    clock = RateClock()
    monkeypatch.setattr(ratelimit, "time", clock)
    yield clock

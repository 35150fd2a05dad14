"""The suite's fake clock for the rate limiter's fixed windows: no test waits for the next minute."""

from __future__ import annotations

import time
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


# Live servers read the real clock, so their tests take an hour-long window instead: a test starts
# within 15 s of a window's end once in 240 runs, not once in four (as with a minute).
LIVE_RATE_WINDOW_SECONDS = 3600


def seconds_left_in_live_window() -> float:
    return LIVE_RATE_WINDOW_SECONDS - time.time() % LIVE_RATE_WINDOW_SECONDS


def live_window() -> int:
    return int(time.time() // LIVE_RATE_WINDOW_SECONDS)


def at_the_start_of_a_live_window(*, room: float = 15.0) -> int:
    """The current hour-long rate window, after waiting for the next one only if fewer than
    ``room`` seconds of this one are left (a run of requests must not straddle two windows)."""
    if (left := seconds_left_in_live_window()) < room:
        time.sleep(left + 0.1)
    return live_window()

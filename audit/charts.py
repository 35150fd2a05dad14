"""Server-rendered SVG bar charts: geometry computed here, drawn by a template (no JavaScript)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from audit.usage import UsageBucket


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    requests_y: float
    requests_height: float
    denials_y: float
    denials_height: float
    label: str
    requests: int
    denials: int


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_bottom: float
    plot_right: int
    bars: list[Bar]
    ticks: list[Tick]
    x_labels: list[XLabel]


def _nice_ceiling(value: int) -> int:
    """The smallest 1/2/5 × 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _label(moment: datetime, *, hourly: bool) -> str:
    return moment.strftime("%H:00") if hourly else moment.strftime("%b %d")


def usage_chart(
    buckets: list[UsageBucket], *, hourly: bool, width: int = 760, height: int = 220
) -> BarChart:
    """Requests (full bar) with denials (overlaid from the baseline) per bucket."""
    left, right, top, bottom = 48, 8, 10, 26
    plot_width = width - left - right
    plot_height = height - top - bottom
    peak = _nice_ceiling(max((b.requests for b in buckets), default=0))
    slot = plot_width / max(len(buckets), 1)
    bar_width = max(slot * 0.7, 1.0)
    baseline = top + plot_height

    def scaled(count: int) -> float:
        return plot_height * count / peak

    bars = []
    for index, bucket in enumerate(buckets):
        x = left + index * slot + (slot - bar_width) / 2
        requests_height = scaled(bucket.requests)
        denials_height = scaled(bucket.denials)
        bars.append(Bar(
            x=round(x, 2), width=round(bar_width, 2),
            requests_y=round(baseline - requests_height, 2), requests_height=round(requests_height, 2),
            denials_y=round(baseline - denials_height, 2), denials_height=round(denials_height, 2),
            label=bucket.start.strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"),
            requests=bucket.requests, denials=bucket.denials,
        ))
    divisions = 4 if peak % 4 == 0 else 2 if peak % 2 == 0 else 1  # whole numbers only
    ticks = [
        Tick(y=round(baseline - plot_height * i / divisions, 2), label=f"{peak * i // divisions:,}")
        for i in range(divisions + 1)
    ]
    every = max(1, math.ceil(len(buckets) / 8))
    x_labels = [
        XLabel(x=round(left + index * slot + slot / 2, 2), label=_label(bucket.start, hourly=hourly))
        for index, bucket in enumerate(buckets) if index % every == 0
    ]
    return BarChart(width=width, height=height, plot_left=left, plot_bottom=baseline,
                    plot_right=width - right, bars=bars, ticks=ticks, x_labels=x_labels)

"""The stories page's chart: matches per hour over the last 7 days, as SVG geometry.

Drawn on the server (templates/chart.svg), no script: one bar per hour, a tick and a label at
each UTC midnight, a mark above the hour each volume surge of the chosen rule or region fired.
The counts come from `store.web_stories.hourly_matches`; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.store.web_stories import ChartSurge

HOURS = 7 * 24
BAR = 5  # px per hour
LEFT, TOP, BOTTOM = 36, 14, 22  # room for the scale, the surge marks, the day labels
HEIGHT = 120  # px of the bars' area
WIDTH = LEFT + HOURS * BAR + 28  # room on the right for the last day's label


@dataclass(frozen=True)
class Bar:
    x: int
    y: float
    height: float
    hour: str  # `2026-12-03 14:00`
    count: int


@dataclass(frozen=True)
class Tick:
    x: int
    label: str  # `12-03`


@dataclass(frozen=True)
class Mark:
    x: int
    why: str
    when: str


@dataclass(frozen=True)
class Chart:
    subject: str  # `rule korea-missiles`, `region KP`
    total: int
    peak: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    marks: tuple[Mark, ...]
    start: datetime
    width: int = WIDTH
    height: int = TOP + HEIGHT + BOTTOM
    base: int = TOP + HEIGHT  # the bars' baseline
    left: int = LEFT
    right: int = LEFT + HOURS * BAR  # the end of the last hour

    @property
    def label(self) -> str:
        """What a screen reader is told instead of the picture: the totals."""
        count = len(self.marks)
        surges = f", {count} volume surge{'s' if count > 1 else ''} marked" if count else ""
        return (
            f"Matches per hour for {self.subject} over the last 7 days: {self.total} in all,"
            f" at most {self.peak} in one hour{surges}"
        )


def chart_start(now: datetime) -> datetime:
    """The first hour drawn: 7 days of whole hours ending with the current one."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=HOURS - 1)


def build_chart(
    subject: str, counts: Mapping[str, int], surges: Sequence[ChartSurge], now: datetime
) -> Chart:
    start = chart_start(now)
    hours = [start + timedelta(hours=h) for h in range(HOURS)]
    values = [counts.get(f"{h:%Y-%m-%dT%H}", 0) for h in hours]
    peak = max(values, default=0)
    scale = HEIGHT / peak if peak else 0.0
    bars = tuple(
        Bar(LEFT + i * BAR, TOP + HEIGHT - n * scale, n * scale, f"{h:%Y-%m-%d %H}:00", n)
        for i, (h, n) in enumerate(zip(hours, values, strict=True))
        if n
    )
    ticks = tuple(Tick(LEFT + i * BAR, f"{h:%m-%d}") for i, h in enumerate(hours) if h.hour == 0)
    marks = tuple(
        Mark(LEFT + _hour_index(start, s.fired_at) * BAR + BAR // 2, s.why, f"{s.fired_at:%H:%M}")
        for s in surges
        if 0 <= _hour_index(start, s.fired_at) < HOURS
    )
    return Chart(subject, sum(values), peak, bars, ticks, marks, start)


def _hour_index(start: datetime, when: datetime) -> int:
    return int((when - start).total_seconds() // 3600)

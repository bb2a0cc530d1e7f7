"""Is the service still doing its work? The poll cycle's progress, watched for /healthz, and
the scheduler's own complaints turned into what they mean for the user.

`Progress` notes when a poll cycle starts and ends and when each of its feeds is done. A
cycle is due every tick; one whose feeds hang may run as long as the fetch's `total` timeout
(a feed's request never runs longer). So the service counts as stuck when nothing has moved
for a tick, plus that timeout, plus a few ticks (at least `MIN_SLACK`: a busy machine is not a
hung service): a blocked event loop, a parse worker that never answers, a cycle waiting on
something that never comes. /healthz then answers 503 with the reason, whatever hangs.

APScheduler warns in its own words when the poll job is still running at the next tick
("maximum number of running instances reached") or fires late ("Run time of job ... was
missed"). `SchedulerNoise` keeps those lines out of the log; the service logs instead what
they mean, from `Progress.report_due` and `missed`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent

__all__ = [
    "MIN_SLACK",
    "SCHEDULER_EVENTS",
    "Progress",
    "SchedulerNoise",
    "missed",
    "quiet_scheduler",
    "translate",
]

SCHEDULER_EVENTS = EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED  # what `translate` handles

MIN_SLACK = 5.0  # seconds: the least margin past a cycle's longest honest run
SLACK_TICKS = 3  # "a few ticks"

# What APScheduler says about a job still running or running late, in its own log lines.
_NOISE = ("maximum number of running instances reached", "was missed by")
_SCHEDULER_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")


class Progress:
    """The poll cycle's heartbeat. Written on the event loop, read by the /healthz thread
    (floats and ints: each read sees a whole value)."""

    def __init__(self, tick: float, slow_after: float, clock: Callable[[], float] = time.monotonic):
        self.tick, self.slow_after, self._clock = tick, slow_after, clock
        self.last_progress = clock()  # the service's start counts as the first sign of life
        self.last_cycle_end: float | None = None
        self.cycle_start: float | None = None  # None between cycles
        self.feeds_done = 0  # in the cycle running now
        self._next_report = 0.0  # seconds into the running cycle of its next "still running"

    def cycle_started(self) -> None:
        self.cycle_start, self.feeds_done = self._clock(), 0
        self._next_report = self.slow_after

    def feed_done(self) -> None:
        self.feeds_done += 1
        self.last_progress = self._clock()

    def cycle_ended(self) -> None:
        self.cycle_start = None
        self.last_progress = self.last_cycle_end = self._clock()

    def stuck(self, longest_feed: float) -> str | None:
        """Why the service looks hung, or None. `longest_feed`: the fetch's total timeout."""
        idle = self._clock() - self.last_progress
        slack = max(SLACK_TICKS * self.tick, MIN_SLACK)
        if idle <= self.tick + longest_feed + slack:
            return None
        late = idle - self.tick
        if self.cycle_start is None:
            return f"no poll cycle has started for {idle:.0f} s (one was due {late:.0f} s ago)"
        return (
            f"no poll cycle has completed for {idle:.0f} s (one was due {late:.0f} s ago) and "
            f"the running one has made no progress: it is stuck"
        )

    def report_due(self) -> str | None:
        """What to log when the next tick finds the cycle still running, at most once every
        `slow_after` s; None when it is not time to say it again."""
        if self.cycle_start is None:
            return None
        running = self._clock() - self.cycle_start
        if running < self._next_report:
            return None
        self._next_report = running + self.slow_after
        return (
            f"poll cycle still running after {running:.0f} s ({self.feeds_done} feeds done so "
            "far); feeds falling due meanwhile wait for it (a feed stops at its fetch timeout)"
        )


def translate(event: JobEvent, progress: Progress, now: datetime) -> tuple[int, str] | None:
    """What to log, as (level, text), for one of the `SCHEDULER_EVENTS`; None for nothing."""
    if event.code == EVENT_JOB_MAX_INSTANCES and event.job_id == "poll":
        report = progress.report_due()
        return (logging.WARNING, report) if report else None
    scheduled = getattr(event, "scheduled_run_time", None)
    if event.code == EVENT_JOB_MISSED and isinstance(scheduled, datetime):
        # A skipped tick is routine after a busy moment; a missed send is worth a warning.
        level = logging.INFO if event.job_id == "poll" else logging.WARNING
        return level, missed(event.job_id, scheduled, now)
    return None


def missed(job_id: str, scheduled: datetime, now: datetime) -> str:
    """A job that fired too late to run, in words: the service was blocked or asleep."""
    late = (now - scheduled).total_seconds()
    if job_id.startswith("route:"):
        route = job_id.removeprefix("route:")
        return (
            f"route {route}: the send due at {scheduled:%Y-%m-%d %H:%M %Z} was missed by "
            f"{late:.0f} s (the service was blocked all that time); its matches go out with "
            "the next one"
        )
    return f"the service was blocked for {late:.1f} s: a poll check was skipped"


class SchedulerNoise(logging.Filter):
    """Drops APScheduler's "still running" and "missed" lines (the service says it better)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not any(noise in text for noise in _NOISE)


def quiet_scheduler() -> None:
    """Install `SchedulerNoise` on the loggers APScheduler writes those lines to (once)."""
    for name in _SCHEDULER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SchedulerNoise) for f in logger.filters):
            logger.addFilter(SchedulerNoise())

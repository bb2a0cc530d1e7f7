"""`monitor run`: the background service.

APScheduler 3 on asyncio decides *when*; the work is `poll.poll_cycle`, the same code
`monitor poll` runs. One scheduler job ticks every few seconds and polls the feeds that are
due: each feed keeps its own interval (plus jitter) through its stored `next_due`, so a tick
costs one small query when nothing is due. The job has `max_instances=1` and `coalesce=True`
(a slow cycle is never run twice at once, missed ticks collapse into one) and a misfire grace
time. `feeds.yaml` and the rule files are re-read when they change; an invalid edit is logged
with its file:line and the last good configuration stays in force.

Stopping (SIGTERM/SIGINT) cancels the cycle in flight. That is safe at any await: a feed's
items and state are written in one synchronous transaction, so nothing is ever half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.channels import Channels, load_channels
from monitor.config import load_feeds
from monitor.cron import schedule_trigger
from monitor.dispatch import freeze_route, send_due
from monitor.errors import MonitorError
from monitor.models import CycleSummary, FetchStatus, Route
from monitor.poll import Parser, poll_cycle, utcnow
from monitor.ruleset import RuleSet, load_ruleset, rule_paths
from monitor.store import Store

log = logging.getLogger("monitor.service")
T = TypeVar("T")

STOP_TIMEOUT = 8.0  # seconds to wait for the cycle to unwind; the promise to users is 10


@dataclass(frozen=True)
class ServiceOptions:
    rules_dir: Path
    db_path: Path
    tick: float = 15.0  # seconds between checks for due feeds
    prune_every: timedelta = timedelta(hours=6)


def summary_line(summary: CycleSummary) -> str:
    """The one log line a cycle writes."""
    return (
        f"poll cycle: {len(summary.outcomes)} feeds "
        f"({summary.count(FetchStatus.OK)} ok, "
        f"{summary.count(FetchStatus.NOT_MODIFIED)} not modified, "
        f"{summary.count(FetchStatus.ERROR)} failed, {summary.count(FetchStatus.GONE)} gone), "
        f"{summary.new} new, {summary.updated} updated items, {summary.matches} rule matches "
        f"in {summary.elapsed:.1f} s"
    )


def file_stamp(*paths: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when any of `paths` (or the files in a folder among them) is edited."""
    stamp = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            try:
                st = file.stat()
            except FileNotFoundError:
                continue
            stamp.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


class Watched(Generic[T]):
    """The last good value loaded from some files, reloaded when the files change.

    An invalid edit is logged with its file:line and the last good value stays in force; only
    the first load may fail (the service refuses to start on an invalid configuration).
    """

    def __init__(self, what: str, paths: tuple[Path, ...], load: Callable[[], T]) -> None:
        self.what, self.paths, self._load = what, paths, load
        self._stamp = file_stamp(*paths)
        self.value: T = load()

    def refresh(self) -> bool:
        """Reload if the files changed; True when a new value took effect."""
        stamp = file_stamp(*self.paths)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.value = self._load()
        except MonitorError as error:
            log.error("%s; keeping the last good %s", error, self.what)
            return False
        log.info("reloaded %s", self.what)
        return True


class Service:
    def __init__(self, options: ServiceOptions) -> None:
        self.options = options
        feeds_file = options.rules_dir / "feeds.yaml"
        self.feeds = Watched("feeds", (feeds_file,), lambda: load_feeds(feeds_file))
        self.rules = Watched("rules", rule_paths(options.rules_dir), self._load_rules)
        channels_file = options.rules_dir / "channels.yaml"
        self.channels = Watched("channels", (channels_file,), self._load_channels)
        self.store = Store(options.db_path)
        self._scheduler: AsyncIOScheduler | None = None
        self.parser = Parser(Parser.default_workers(len(self.feeds.value.feeds)))
        self._cycle_task: asyncio.Task[None] | None = None
        self._last_prune: datetime | None = None

    def _load_rules(self) -> RuleSet:
        ruleset = load_ruleset(self.options.rules_dir)
        log.info(
            "rules: %d alert rules, %d regions", len(ruleset.rules), len(ruleset.gazetteer.codes)
        )
        return ruleset

    def _load_channels(self) -> Channels:
        rules = self.rules.value
        path = self.options.rules_dir / "channels.yaml"
        channels = load_channels(path, {r.id for r in rules.rules}, rules.gazetteer.codes)
        log.info("channels: %d receivers, %d routes", len(channels.receivers), len(channels.routes))
        return channels

    async def cycle(self) -> None:
        """One scheduler tick: reload config if edited, poll due feeds, deliver, prune."""
        self._cycle_task = asyncio.current_task()
        self.feeds.refresh()
        self.rules.refresh()
        if self.channels.refresh():
            self._schedule_routes()
        config = self.feeds.value
        summary = await poll_cycle(
            config.feeds, self.store, config.settings, parser=self.parser, ruleset=self.rules.value
        )
        for result in summary.outcomes:
            if result.error:
                log.warning("feed %s: %s", result.feed_id, result.error)
        if summary.outcomes:
            log.info(summary_line(summary))
        routes = self.channels.value.routes
        await self.deliver([r for r in routes if r.schedule == "immediate"])
        self._prune_if_due(config.settings.retention)
        self._cycle_task = None

    async def deliver(self, routes: Sequence[Route]) -> None:
        """Freeze these routes' digests, then send every due digest (retries included)."""
        channels, now = self.channels.value, utcnow()
        rules = {r.id: r for r in self.rules.value.rules}
        feeds = {f.id: f for f in self.feeds.value.feeds}
        for route in routes:
            freeze_route(self.store, route, channels, rules, feeds, now)
        await send_due(self.store, channels, os.environ)

    async def route_due(self, route_id: str) -> None:
        """A cron route's time has come."""
        await self.deliver([r for r in self.channels.value.routes if r.id == route_id])

    def _schedule_routes(self) -> None:
        """One job per cron route, in the route's time zone; replaced on every reload."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        for job in scheduler.get_jobs():
            if job.id.startswith("route:"):
                job.remove()
        for route in self.channels.value.routes:
            trigger = schedule_trigger(route)
            if trigger is None:
                continue  # immediate: delivered after each poll cycle
            scheduler.add_job(
                self.route_due,
                trigger,
                args=(route.id,),
                id=f"route:{route.id}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,  # a digest an hour late beats no digest
            )

    def _prune_if_due(self, retention: timedelta) -> None:
        now = utcnow()
        if self._last_prune and now - self._last_prune < self.options.prune_every:
            return
        self._last_prune = now
        removed = self.store.prune(now - retention)
        if removed:
            log.info("retention: removed %d items older than %s days", removed, retention.days)

    async def run(self, stop: asyncio.Event) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self.cycle,
            IntervalTrigger(seconds=self.options.tick),
            id="poll",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self.options.tick)),
        )
        self._scheduler = scheduler
        self._schedule_routes()
        scheduler.start()
        log.info(
            "monitor running: %d feeds, database %s",
            len(self.feeds.value.feeds),
            self.options.db_path,
        )
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await self._cancel_cycle()
            self.parser.close()
            self.store.close()
            log.info("monitor stopped")

    async def _cancel_cycle(self) -> None:
        task = self._cycle_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, STOP_TIMEOUT)


def run_service(options: ServiceOptions) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Service(options).run(stop)

    asyncio.run(main())

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
SIGHUP reloads everything under `rules/` at once, changed or not. One service per database:
`lock.InstanceLock` is held for the service's life. `/healthz` and `/metrics` are served from
a thread (`health.HealthServer`); the metrics are counted here from what the stages return.
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

from monitor.deliver import SendResult
from monitor.digest.channels import Channels, load_channels
from monitor.digest.cron import schedule_trigger
from monitor.digest.dispatch import freeze_route, send_due
from monitor.errors import MonitorError
from monitor.ingest.feeds import load_feeds
from monitor.ingest.poll import Parser, poll_cycle, utcnow
from monitor.match.ruleset import RuleSet, load_ruleset, rule_paths
from monitor.models import CycleSummary, FetchStatus, Route
from monitor.service.health import Health, HealthServer
from monitor.service.lock import InstanceLock
from monitor.service.logs import watch_secrets
from monitor.service.metrics import CONTENT_TYPE, Metrics, new_matches
from monitor.store import Store
from monitor.store.outbox import FrozenDigest, Outbox
from monitor.store.probe import DatabaseProbe

log = logging.getLogger("monitor.service")
T = TypeVar("T")

STOP_TIMEOUT = 8.0  # seconds to wait for the cycle to unwind; the promise to users is 10


@dataclass(frozen=True)
class ServiceOptions:
    rules_dir: Path
    db_path: Path
    tick: float = 15.0  # seconds between checks for due feeds
    prune_every: timedelta = timedelta(hours=6)
    health_host: str = "127.0.0.1"
    health_port: int = 8321  # 0 picks a free port (logged)


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

    def __init__(
        self,
        what: str,
        paths: tuple[Path, ...],
        load: Callable[[], T],
        on_reload: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.what, self.paths, self._load, self._on_reload = what, paths, load, on_reload
        self._stamp = file_stamp(*paths)
        self.value: T = load()

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the files changed (or `force`); True when a new value took effect."""
        stamp = file_stamp(*self.paths)
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        try:
            self.value = self._load()
        except MonitorError as error:
            log.error("%s; keeping the last good %s", error, self.what)
            self._reported(ok=False)
            return False
        log.info("reloaded %s", self.what)
        self._reported(ok=True)
        return True

    def _reported(self, *, ok: bool) -> None:
        if self._on_reload is not None:
            self._on_reload(self.what, ok)


class Service:
    def __init__(self, options: ServiceOptions) -> None:
        self.options = options
        self.metrics = Metrics()
        counted = self.metrics.reloaded
        feeds_file = options.rules_dir / "feeds.yaml"
        self.feeds = Watched("feeds", (feeds_file,), lambda: load_feeds(feeds_file), counted)
        self.rules = Watched("rules", rule_paths(options.rules_dir), self._load_rules, counted)
        channels_file = options.rules_dir / "channels.yaml"
        self.channels = Watched("channels", (channels_file,), self._load_channels, counted)
        self.store = Store(options.db_path)
        self._probe = DatabaseProbe(options.db_path)
        self._scheduler: AsyncIOScheduler | None = None
        self.parser = Parser(Parser.default_workers(len(self.feeds.value.feeds)))
        self._cycle_task: asyncio.Task[None] | None = None
        self._last_prune: datetime | None = None
        self._match_totals = self.store.match_counts()  # the baseline of monitor_matches
        self._stopping = False

    def _load_rules(self) -> RuleSet:
        ruleset = load_ruleset(self.options.rules_dir)
        log.info(
            "rules: %d alert rules, %d regions", len(ruleset.rules), len(ruleset.gazetteer.codes)
        )
        self.metrics.rules.set(len(ruleset.rules))
        return ruleset

    def _load_channels(self) -> Channels:
        rules = self.rules.value
        path = self.options.rules_dir / "channels.yaml"
        # Before validating: the secrets of a file being edited are redacted even if it is
        # invalid, and an error message quoting the file cannot leak them.
        watch_secrets(path)
        channels = load_channels(path, {r.id for r in rules.rules}, rules.gazetteer.codes)
        log.info("channels: %d receivers, %d routes", len(channels.receivers), len(channels.routes))
        return channels

    def refresh(self, *, force: bool = False) -> None:
        """Reload what was edited under rules/ (everything when `force`)."""
        self.feeds.refresh(force=force)
        self.rules.refresh(force=force)
        if self.channels.refresh(force=force):
            self._schedule_routes()

    def reload_now(self) -> None:
        """SIGHUP: reload rules/ at once, without waiting for the next tick."""
        log.info("SIGHUP: reloading %s", self.options.rules_dir)
        self.refresh(force=True)

    async def cycle(self) -> None:
        """One scheduler tick: reload config if edited, poll due feeds, deliver, prune."""
        if self._stopping:
            return  # a tick that fired as the stop began: the store may already be closed
        self._cycle_task = asyncio.current_task()
        self.refresh()
        config = self.feeds.value
        summary = await poll_cycle(
            config.feeds, self.store, config.settings, parser=self.parser, ruleset=self.rules.value
        )
        self._polled(summary)
        routes = self.channels.value.routes
        await self.deliver([r for r in routes if r.schedule == "immediate"])
        self._prune_if_due(config.settings.retention)
        self._cycle_task = None

    def _polled(self, summary: CycleSummary) -> None:
        """Log and count a poll cycle."""
        for result in summary.outcomes:
            if result.error:
                log.warning(
                    "feed %s: %s", result.feed_id, result.error, extra={"feed": result.feed_id}
                )
        if summary.outcomes:
            log.info(summary_line(summary))
        self.metrics.cycle(summary)
        if summary.matches:
            self._count_matches()

    def _count_matches(self) -> None:
        totals = self.store.match_counts()
        severity = {r.id: r.severity for r in self.rules.value.rules}
        self.metrics.matched(new_matches(self._match_totals, totals), severity)
        self._match_totals = totals

    async def deliver(self, routes: Sequence[Route]) -> None:
        """Freeze these routes' digests, then send every due digest (retries included)."""
        channels, now = self.channels.value, utcnow()
        rules = {r.id: r for r in self.rules.value.rules}
        feeds = {f.id: f for f in self.feeds.value.feeds}
        for route in routes:
            freeze_route(self.store, route, channels, rules, feeds, now)
        sent = await send_due(self.store, channels, os.environ)
        self._count_sends(sent)

    def _count_sends(self, sent: Sequence[tuple[FrozenDigest, SendResult]]) -> None:
        outbox = Outbox(self.store)
        # A failure's fate (retry or dead) is what dispatch recorded; look it up only then.
        results = [(d, r, "delivered" if r.ok else _status(outbox, d.id)) for d, r in sent]
        self.metrics.sent(results)
        self.metrics.queue(outbox.counts())

    async def route_due(self, route_id: str) -> None:
        """A cron route's time has come."""
        if self._stopping:
            return
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
            self._match_totals = self.store.match_counts()  # their matches went with them

    async def run(self, stop: asyncio.Event) -> None:
        health: HealthServer | None = None
        try:
            health = self._serve_health()
            self._start_scheduler()
            log.info(
                "monitor running: %d feeds, database %s",
                len(self.feeds.value.feeds),
                self.options.db_path,
            )
            await stop.wait()
        finally:
            self._stopping = True
            if health is not None:
                health.stop()
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            await self._cancel_cycle()
            self.parser.close()
            self.store.close()
            log.info("monitor stopped")

    def _serve_health(self) -> HealthServer:
        host, port = self.options.health_host, self.options.health_port
        server = HealthServer(host, port, self.health, self._metrics_page)
        server.start()
        log.info("health and metrics on %s (/healthz, /metrics)", server.url)
        return server

    def _start_scheduler(self) -> None:
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

    def health(self) -> Health:
        """/healthz: the scheduler runs and the database file answers. Runs in a thread."""
        scheduler = self._scheduler
        details: dict[str, object] = {"pid": os.getpid(), "feeds": len(self.feeds.value.feeds)}
        last = self.metrics.last_success_at
        details["last_successful_poll"] = _iso(last) if last is not None else None
        if self._stopping:
            return Health(ok=False, reason="stopping", details=details)
        if scheduler is None or not scheduler.running:
            return Health(ok=False, reason="the scheduler is not running", details=details)
        problem = self._probe.problem()
        if problem is not None:
            return Health(ok=False, reason=problem, details=details)
        return Health(ok=True, details=details)

    def _metrics_page(self) -> tuple[bytes, str]:
        return self.metrics.render(), CONTENT_TYPE

    async def _cancel_cycle(self) -> None:
        task = self._cycle_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, STOP_TIMEOUT)


def _status(outbox: Outbox, digest_id: str) -> str:
    digest = outbox.get(digest_id)
    return digest.status if digest is not None else "unknown"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def run_service(options: ServiceOptions) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly; SIGHUP reloads rules/.

    Refuses to start (StoreError) while another service holds the database's lock.
    """
    with InstanceLock(options.db_path):
        asyncio.run(_main(options))


async def _main(options: ServiceOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service: Service | None = None

    def reload() -> None:
        # Installed before the first load, so an early SIGHUP cannot kill the process (its
        # default action); that load reads the files anyway.
        if service is not None:
            service.reload_now()

    loop.add_signal_handler(signal.SIGHUP, reload)
    service = Service(options)
    await service.run(stop)

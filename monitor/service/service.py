"""`monitor run`: the background service.

APScheduler 3 on asyncio decides *when*; the work is `poll.poll_cycle`, the same code
`monitor poll` runs. One scheduler job ticks every few seconds and polls the feeds that are
due: each feed keeps its own interval (plus jitter) through its stored `next_due`, so a tick
costs one small query when nothing is due. The job has `max_instances=1` and `coalesce=True`
(a slow cycle is never run twice at once, missed ticks collapse into one) and a misfire grace
time; when a tick finds the cycle still running, the log says so in words (`watchdog`).
`feeds.yaml` and the rule files are re-read when they change (`watched`): an edit that cannot
be loaded is logged and counted, and the last good configuration stays in force.

Delivery is its own job (`delivery.DeliveryJob`): the cycle wakes it as soon as a feed has
stored new matches, cron routes wake it at their time, and it never holds up a poll (nor a
poll a send). The console, `/healthz` and `/metrics` are served from a thread (`web.server`);
/healthz turns 503 when the poll cycle stops making progress (`watchdog.Progress`).

Stopping (SIGTERM/SIGINT, `stopping.Stopper`) cancels the cycle in flight, gives a send in
flight a moment to finish, kills the parse workers and closes the store; if anything hangs,
the process still exits in time. That is safe at any point: a feed's items and state are
written in one transaction, and a digest is recorded as sent only after the server accepted
it. SIGHUP reloads everything under `rules/` at once. One service per SQLite database:
`lock.InstanceLock` is held for the service's life (on PostgreSQL, many share one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from apscheduler.events import JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.digest.channels import Channels, load_channels
from monitor.digest.cron import schedule_trigger
from monitor.errors import MonitorError
from monitor.ingest.feeds import FeedsConfig, load_feeds
from monitor.ingest.poll import Parser, poll_cycle, utcnow
from monitor.match.ruleset import RuleSet, load_ruleset, rule_paths
from monitor.models import CycleSummary, PollOutcome
from monitor.service.delivery import DeliveryJob, Snapshot
from monitor.service.health import Health
from monitor.service.instance import InstanceLife
from monitor.service.lock import InstanceLock
from monitor.service.logs import summary_line, watch_secrets
from monitor.service.metrics import CONTENT_TYPE, Metrics, new_matches
from monitor.service.stopping import Stopper
from monitor.service.surging import detect_surges
from monitor.service.watchdog import SCHEDULER_EVENTS, Progress, quiet_scheduler, translate
from monitor.service.watched import Watched
from monitor.store import Store
from monitor.store.location import DbLocation
from monitor.store.probe import probe_for
from monitor.web.config import WebConfig, checked_token, token_from_env
from monitor.web.server import WebServer, start_console

log = logging.getLogger("monitor.service")

# The promise to users is an exit within 10 s of SIGTERM: the cycle and the sends get these
# to unwind, and whatever still hangs after HARD_STOP ends with the process.
CYCLE_STOP = 5.0
SEND_STOP = 3.0
HARD_STOP = 9.0
SLOW_TICKS = 4  # a cycle or a send running this many ticks is reported (60 s by default)


@dataclass(frozen=True)
class ServiceOptions:
    rules_dir: Path
    db: DbLocation  # a SQLite file or a PostgreSQL URL
    tick: float = 15.0  # seconds between checks for due feeds
    prune_every: timedelta = timedelta(hours=6)
    health_host: str = "127.0.0.1"
    health_port: int = 8321  # 0 picks a free port (logged)

    @property
    def slow_after(self) -> float:
        """Seconds after which a running cycle or send is reported as slow."""
        return SLOW_TICKS * self.tick


class Service:
    def __init__(self, options: ServiceOptions) -> None:
        self.options = options
        # Checked first: a console bound beyond loopback without its token never starts.
        self._web_token = checked_token(options.health_host, token_from_env())
        self.metrics = Metrics()
        counted = self.metrics.reloaded
        feeds_file = options.rules_dir / "feeds.yaml"
        self.feeds = Watched("feeds", (feeds_file,), lambda: _feeds(feeds_file), counted)
        self.rules = Watched("rules", rule_paths(options.rules_dir), self._load_rules, counted)
        channels_file = options.rules_dir / "channels.yaml"
        self.channels = Watched("channels", (channels_file,), self._load_channels, counted)
        self.store = Store(options.db.target)
        self._probe = probe_for(options.db)
        self.life = InstanceLife(self.store, self.metrics, options.tick)
        self._scheduler: AsyncIOScheduler | None = None
        self.parser = Parser(Parser.default_workers(len(self.feeds.value.feeds)))
        self.progress = Progress(options.tick, options.slow_after)
        self.delivery = DeliveryJob(
            self.store,
            self._snapshot,
            self.metrics,
            every=options.tick,
            slow_after=options.slow_after,
        )
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

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            channels=self.channels.value,
            rules={r.id: r for r in self.rules.value.rules},
            feeds={f.id: f for f in self.feeds.value.feeds},
        )

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
        """One scheduler tick: reload config if edited, poll due feeds, prune."""
        if self._stopping:
            return  # a tick that fired as the stop began: the store may already be closed
        self._cycle_task = asyncio.current_task()
        self.progress.cycle_started()
        try:
            self.refresh()
            config = self.feeds.value
            summary = await poll_cycle(
                config.feeds,
                self.store,
                config.settings,
                parser=self.parser,
                ruleset=self.rules.value,
                on_outcome=self._feed_done,
                holder=self.life.id,
            )
            self._polled(summary)
            # Every cycle that polled: stories a failed linking left behind are linked now.
            if summary.outcomes and detect_surges(
                self.store, self.channels.value, config.settings, self.metrics
            ):
                self.delivery.wake()  # the alerts go out at once, like immediate digests
            self._prune_if_due(config.settings.retention)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Abandoned by the stop, safely (see the module docstring): ending quietly keeps
            # APScheduler from logging the cancellation as a crash with a traceback.
            log.info("poll cycle abandoned: the service is stopping")
        except MonitorError as error:  # e.g. the database cannot be read: try next tick
            log.error("poll cycle: %s", error)
        except Exception:
            log.exception("poll cycle: unexpected error (the next tick tries again)")
        finally:
            self._cycle_task = None
            self.progress.cycle_ended()

    def _feed_done(self, outcome: PollOutcome) -> None:
        """A feed of the cycle is stored: immediate routes need not wait for the others."""
        self.progress.feed_done()
        if outcome.matches:
            self.delivery.wake()

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
            # The cycle linked its items to stories at its end: immediate routes hold new
            # items until then (digest.storyfirst), so they go out now, not a tick later.
            self.delivery.wake()

    def _count_matches(self) -> None:
        totals = self.store.match_counts()
        severity = {r.id: r.severity for r in self.rules.value.rules}
        self.metrics.matched(new_matches(self._match_totals, totals), severity)
        self._match_totals = totals

    async def route_due(self, route_id: str) -> None:
        """A cron route's time has come: the delivery job takes it from here, at once.
        (A coroutine, so APScheduler runs it on the loop rather than in a thread.)"""
        if not self._stopping:
            self.delivery.route_due(route_id)

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
                continue  # immediate: delivered as soon as a poll stores matches
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
        health: WebServer | None = None
        try:
            health = self._serve_health()
            self._start_scheduler()
            self.delivery.start()
            log.info(
                "monitor running: %d feeds, database %s",
                len(self.feeds.value.feeds),
                self.options.db,  # shown without a URL's password
            )
            await stop.wait()
        finally:
            self._stopping = True
            if health is not None:
                health.stop()
            await self._stop_jobs()
            self.parser.abandon()
            await self.life.leave()
            self.store.close()
            log.info("monitor stopped")

    def _serve_health(self) -> WebServer:
        o = self.options
        config = WebConfig(o.db, o.rules_dir, o.health_host, self._web_token)
        config = replace(config, health=self.health, metrics=self._metrics_page)
        # A digest retried on the console is sent at once, from this loop, by the delivery job.
        wake = partial(asyncio.get_running_loop().call_soon_threadsafe, self.delivery.wake)
        config = replace(config, wake_delivery=wake)
        server = start_console(config, o.health_port)
        log.info("console, health and metrics on %s (/, /healthz, /metrics)", server.url)
        return server

    def _start_scheduler(self) -> None:
        quiet_scheduler()
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
        scheduler.add_listener(self._scheduler_event, SCHEDULER_EVENTS)
        self._scheduler = scheduler
        self._schedule_routes()
        self.life.start(scheduler)
        scheduler.start()

    def _scheduler_event(self, event: JobEvent) -> None:
        """APScheduler's "still running" and "missed", said in the user's terms."""
        said = translate(event, self.progress, datetime.now(UTC))
        if said is not None:
            log.log(*said)

    def health(self) -> Health:
        """/healthz: the scheduler runs, the poll cycle makes progress and the database (its
        file, or its server) answers. Runs in a thread."""
        scheduler = self._scheduler
        feeds = self.feeds.value
        details: dict[str, object] = {"pid": os.getpid(), "instance": self.life.id}
        details["feeds"] = sum(1 for f in feeds.feeds if f.enabled)
        last = self.metrics.last_success_at
        details["last_successful_poll"] = _iso(last) if last is not None else None
        if self._stopping:
            return Health(ok=False, reason="stopping", details=details)
        if scheduler is None or not scheduler.running:
            return Health(ok=False, reason="the scheduler is not running", details=details)
        stuck = self.progress.stuck(feeds.settings.total_timeout)
        if stuck is not None:
            return Health(ok=False, reason=stuck, details=details)
        problem = self._probe.problem()
        if problem is not None:
            return Health(ok=False, reason=problem, details=details)
        return Health(ok=True, details=details)

    def _metrics_page(self) -> tuple[bytes, str]:
        return self.metrics.render(), CONTENT_TYPE

    async def _stop_jobs(self) -> None:
        """Stop ticking, end the cycle, the sends and the heartbeat in flight, then the
        scheduler.

        In that order because the scheduler's shutdown cancels whatever job it started, and
        reports each as a crash with a traceback: by then no job of ours is left running (a
        tick submitted just before sees `_stopping` at its first step and returns)."""
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            scheduler.pause()
        await asyncio.sleep(0)  # that first step
        await asyncio.gather(self._cancel_cycle(), self.delivery.stop(SEND_STOP), self.life.stop())
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    async def _cancel_cycle(self) -> None:
        task = self._cycle_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, CYCLE_STOP)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _feeds(path: Path) -> FeedsConfig:
    """Load feeds.yaml, first adding the feed logins it names to what the logs redact."""
    watch_secrets(path)
    return load_feeds(path)


def run_service(options: ServiceOptions) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly; SIGHUP reloads rules/.

    Refuses to start (StoreError) while another service holds a SQLite database's lock.
    """
    with InstanceLock(options.db):
        asyncio.run(_main(options))


async def _main(options: ServiceOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    Stopper(loop, stop, HARD_STOP).install()
    service: Service | None = None

    def reload() -> None:
        # Installed before the first load, so an early SIGHUP cannot kill the process (its
        # default action); that load reads the files anyway.
        if service is not None:
            service.reload_now()

    loop.add_signal_handler(signal.SIGHUP, reload)
    service = Service(options)
    await service.run(stop)

"""The service as one instance among several on a database (`store.cluster`).

It has an id (`MONITOR_INSTANCE`, else `<hostname>-<pid>`), registers when it starts, beats
every tick (a scheduler job of its own: a long poll cycle does not stop the beat) and leaves
when it stops cleanly, releasing what it holds. Other instances count it live while it beats:
within `LIVE_TICKS` ticks, and never less than `LIVE_AT_LEAST` (a tick of 0.2 s in a test must
not make a short pause look like a death). A dead instance's feeds are taken at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import __version__
from monitor.errors import MonitorError
from monitor.service.metrics import Metrics
from monitor.store import Store
from monitor.store.cluster import LIVE_TICKS, Instance, Instances, Leases

log = logging.getLogger("monitor.service")

LIVE_AT_LEAST = timedelta(seconds=10)
LEAVE_WITHIN = 2.0  # seconds a clean stop waits for the database to take the sign-off
FORGET_AFTER = timedelta(days=1)  # a dead instance's row is removed by the next one to start


class InstanceLife:
    """Register, beat, leave; `id` is what the poll cycle claims feeds as."""

    def __init__(self, store: Store, metrics: Metrics, tick: float) -> None:
        self._store, self._metrics = store, metrics
        self.id = metrics.instance
        self._live_for = max(timedelta(seconds=LIVE_TICKS * tick), LIVE_AT_LEAST)
        self._tick = tick
        self._stopping = False
        # The threads of beats still running (cancelling a beat's job does not stop them).
        self._in_flight: set[asyncio.Future[None]] = set()
        now = datetime.now(UTC)
        self._me = Instance(self.id, socket.gethostname(), os.getpid(), now, now, __version__)
        metrics.identify(store.backend)

    def start(self, scheduler: AsyncIOScheduler) -> None:
        """Register now, then beat every tick."""
        now = datetime.now(UTC)
        Instances(self._store).register(self._me, now + self._live_for, now - FORGET_AFTER)
        log.info("instance %s on %s", self.id, self._store.backend)
        scheduler.add_job(
            self.beat,
            IntervalTrigger(seconds=self._tick),
            id="beat",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self._tick)),
        )

    async def beat(self) -> None:
        """Seen now; how many feeds it holds goes to /metrics. A failed beat is logged: the
        next tick tries again (others count it dead only after `LIVE_TICKS` of them)."""
        if self._stopping:
            return
        thread = asyncio.ensure_future(asyncio.to_thread(self._beat))
        self._in_flight.add(thread)
        thread.add_done_callback(self._in_flight.discard)
        try:
            # Shielded: cancelling the wait cannot stop the thread, which `stop` waits for.
            await asyncio.shield(thread)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by the scheduler's shutdown: ending quietly keeps APScheduler from
            # logging the stop as a crash with a traceback.
        except MonitorError as error:
            log.warning("instance %s: heartbeat failed: %s", self.id, error)

    async def stop(self) -> None:
        """No beat from now on; those in flight are waited for (at most `LEAVE_WITHIN`): a
        beat that finds no row registers the instance again, which after `leave` would bring
        a stopped instance back to life for the others."""
        self._stopping = True
        if self._in_flight:  # (their failures were logged by the beats that ran them)
            await asyncio.wait(set(self._in_flight), timeout=LEAVE_WITHIN)

    def _beat(self) -> None:
        now = datetime.now(UTC)
        Instances(self._store).beat(self._me, now, now + self._live_for)
        self._metrics.held(Leases(self._store, self.id).count(now))

    async def leave(self) -> None:
        """A clean stop: gone from the instances, its leases free for the others at once.
        Bounded: a database that does not answer must not hold up the stop (the others then
        count this instance dead after its ticks, and its leases run out)."""
        leave = partial(Instances(self._store).leave, self.id, datetime.now(UTC))
        try:
            await asyncio.wait_for(asyncio.to_thread(leave), LEAVE_WITHIN)
        except (MonitorError, TimeoutError) as error:
            reason = str(error) or f"no answer within {LEAVE_WITHIN:g} s"
            log.warning("instance %s: could not sign off (%s)", self.id, reason)

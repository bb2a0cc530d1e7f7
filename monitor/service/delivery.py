"""The service's delivery job: freezes digests and sends them, never in the way of polling.

It is its own asyncio task, apart from the poll cycle, so a poll never waits on a send and a
send never waits on a poll. It runs a *round* every tick, and at once when woken: by the poll
cycle as soon as a feed has stored new matches (immediate routes then go out within moments,
whatever the other feeds of the cycle are still doing), or by a cron route's time. A round
freezes the digests of the routes concerned (every immediate route, the cron routes whose time
came, and routes whose last build failed and are due again) and starts sending what is due.

Sending runs in one *lane* per receiver: a mail server that accepts a connection and never
answers holds up its own receiver's digests only, for as long as the sender's own timeouts
allow (`deliver`), and the lane reports a send that is slow in words a user can act on. A send
is leased first and recorded after, as `digest.dispatch` does, so a digest is never sent by two
processes at once and never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.deliver import SendResult
from monitor.deliver.email import abort_sends
from monitor.deliver.result import one_line
from monitor.digest.channels import Channels
from monitor.digest.dispatch import (
    DEFAULT_GIVE_UP,
    LEASE,
    claim_periods,
    cron_period,
    freeze_routes,
    record,
    routes_to_retry,
    send_one,
)
from monitor.errors import MonitorError
from monitor.match.rule import Rule
from monitor.models import Feed
from monitor.service.metrics import Metrics
from monitor.service.surging import freeze_surge_alerts
from monitor.store import Store
from monitor.store.outbox import FrozenDigest, Outbox

log = logging.getLogger("monitor.delivery")


@dataclass(frozen=True)
class Snapshot:
    """The configuration a round works with (the last good one, read at its start)."""

    channels: Channels
    rules: Mapping[str, Rule]
    feeds: Mapping[str, Feed]


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryJob:
    """Rounds of freeze-and-send, as an asyncio task; see the module docstring."""

    def __init__(
        self,
        store: Store,
        snapshot: Callable[[], Snapshot],
        metrics: Metrics,
        *,
        every: float,
        slow_after: float,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.store, self._snapshot, self.metrics, self.env = store, snapshot, metrics, env
        self.every = every  # seconds between rounds when nothing wakes the job
        self.slow_after = slow_after  # a send running this long is reported (and each time)
        self._woken = asyncio.Event()
        # Cron routes whose time came since the last round -> the period (fire time) it is.
        self._cron: dict[str, datetime] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}  # receiver id -> its sending task
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery")

    def wake(self) -> None:
        """A feed stored new matches: a round now (for the immediate routes)."""
        self._woken.set()

    def route_due(self, route_id: str) -> None:
        """A cron route's time has come: its digest is frozen in the next round, now, unless
        another instance's scheduler claimed the same period first."""
        route = next((r for r in self._snapshot().channels.routes if r.id == route_id), None)
        if route is not None:
            self._cron[route_id] = cron_period(route, utcnow())
        self._woken.set()

    async def stop(self, grace: float) -> None:
        """No new round or send; a send in flight gets `grace` s to finish and be recorded,
        then it is cut (not recorded as delivered, it goes out again after a restart)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        lanes = list(self._lanes.values())
        if lanes:
            await asyncio.wait(lanes, timeout=grace)
        abort_sends()
        for lane in lanes:
            lane.cancel()
        tasks = [t for t in (self._task, *lanes) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every):
                    await self._woken.wait()
            self._woken.clear()
            try:
                self.round()
            except MonitorError as error:  # e.g. the database became unwritable
                log.error("delivery: %s; trying again in %g s", error, self.every)
            except Exception:
                log.exception("delivery: unexpected error; trying again in %g s", self.every)

    def round(self) -> None:
        """Freeze what is due to be frozen, then start a lane for each receiver with digests
        due and no lane running (a running lane picks up new digests before it ends)."""
        snap, now = self._snapshot(), utcnow()
        cron, self._cron = self._cron, {}
        cron_won = claim_periods(self.store, cron, self.metrics.instance, now)
        chosen = {
            r.id: r for r in snap.channels.routes if r.schedule == "immediate" or r.id in cron_won
        }
        # Routes whose digest failed to build are tried again once their backoff is over.
        for route in routes_to_retry(self.store, snap.channels, now):
            chosen.setdefault(route.id, route)
        routes = list(chosen.values())
        freeze_surge_alerts(self.store, snap.channels, snap.rules, snap.feeds, now)
        freeze_routes(self.store, routes, snap.channels, snap.rules, snap.feeds, now)
        outbox = Outbox(self.store)
        for receiver in dict.fromkeys(d.receiver_id for d in outbox.due(now)):
            if receiver not in self._lanes:
                lane = asyncio.create_task(self._lane(receiver), name=f"delivery to {receiver}")
                self._lanes[receiver] = lane
        self.metrics.queue(outbox.counts())

    async def _lane(self, receiver: str) -> None:
        """Send the receiver's due digests, oldest first, until none is left to send."""
        try:
            while await self._send_due_to(receiver):
                pass
        except MonitorError as error:
            log.error("delivery to %s: %s", receiver, error, extra={"receiver": receiver})
        except Exception:
            log.exception(
                "delivery to %s: unexpected error", receiver, extra={"receiver": receiver}
            )
        finally:
            self._lanes.pop(receiver, None)

    async def _send_due_to(self, receiver: str) -> bool:
        """One pass over the receiver's due digests; False when it sent nothing."""
        outbox, sent = Outbox(self.store), False
        for digest in outbox.due(utcnow()):
            if self._stopping:
                break
            if digest.receiver_id != receiver:
                continue
            now = utcnow()
            if not outbox.lease(digest.id, now, now + LEASE):
                continue  # another process is sending it
            await self._send(outbox, digest)
            sent = True
        return sent

    async def _send(self, outbox: Outbox, digest: FrozenDigest) -> None:
        channels = self._snapshot().channels
        try:
            result = await self._reporting(send_one(digest, channels, self.env), digest)
        except Exception as error:  # a bug sending one digest is a failed attempt, retried
            log.exception("digest %s: unexpected error while sending", digest.id)
            result = SendResult.temporary(one_line(f"unexpected error: {error!r}"))
        route = next((r for r in channels.routes if r.id == digest.route_id), None)
        give_up = route.give_up_after if route else DEFAULT_GIVE_UP
        # The time after the send: a retry is spaced from when the attempt ended.
        record(outbox, digest, result, utcnow(), give_up)
        status = "delivered" if result.ok else _status(outbox, digest.id)
        # The queue first: whoever reads /metrics between the two and sees the send counted
        # also sees the queue without it.
        self.metrics.queue(outbox.counts())
        self.metrics.sent([(digest, result, status)])

    async def _reporting(self, send: Awaitable[SendResult], digest: FrozenDigest) -> SendResult:
        """Await a send, logging what it means every `slow_after` s that it goes on."""
        task = asyncio.ensure_future(send)
        waited = 0.0
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.slow_after)
                if done:
                    return task.result()
                waited += self.slow_after
                log.warning(
                    "delivery to %s is still running after %.0f s (digest %s); polling goes on,"
                    " and the send stops at the receiver's timeout",
                    digest.receiver_id, waited, digest.id,
                    extra={"receiver": digest.receiver_id, "digest": digest.id},
                )  # fmt: skip
        finally:
            task.cancel()


def _status(outbox: Outbox, digest_id: str) -> str:
    digest = outbox.get(digest_id)
    return digest.status if digest is not None else "unknown"

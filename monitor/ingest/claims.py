"""A poll cycle's claim on its feeds: several instances share one database, and no feed is
polled by two of them at once (`store.cluster.Leases`).

The cycle works out which feeds are due from what it read of their states (`Store.schedules`),
claims those, and polls only what it got. Between that read and the claim another instance
may have polled a feed and released it; so, once claimed, each feed is checked again against
its state as stored now, and one that is no longer due is released unpolled. While the cycle
runs its leases are renewed (a long cold cycle keeps its feeds); each feed's lease is released
soon after its poll is stored (within `RELEASE_EVERY`, many feeds a write), and whatever is
left when the cycle ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from monitor.errors import MonitorError
from monitor.models import Feed, FeedState
from monitor.store import Store
from monitor.store.cluster import Leases

log = logging.getLogger("monitor.poll")
Clock = Callable[[], datetime]
RELEASE_EVERY = 0.25  # seconds: stored feeds' leases are released at most this often
Recheck = Callable[[Feed, FeedState | None], bool]


@dataclass(frozen=True)
class Claim:
    """The feeds a cycle polls, their states as stored once claimed, and the due feeds it
    left to the instances holding them: (feed id, holder)."""

    feeds: tuple[Feed, ...]
    states: dict[str, FeedState]
    held: tuple[tuple[str, str], ...] = ()


async def claim_due(
    store: Store, leases: Leases, due: Sequence[Feed], now: datetime, lease: timedelta,
    still_due: Recheck, *, share: bool = False,
) -> Claim:  # fmt: skip
    """Claim the due feeds (`share`: a running service's fair share of them, see
    `Leases.fair_share`); keep those still due against the state stored now."""
    ids = {f.id for f in due}
    if share:
        ids = await asyncio.to_thread(leases.fair_share, ids, now)
    got = await asyncio.to_thread(leases.claim, ids, now, now + lease)
    held: dict[str, str] = {}
    if len(got) < len(ids):
        held = await asyncio.to_thread(leases.holders, ids - got, now)
    states = store.states(got) if got else {}  # the claimed feeds' alone: a tick may claim few
    mine = tuple(f for f in due if f.id in got and still_due(f, states.get(f.id)))
    stale = got - {f.id for f in mine}
    if stale:  # polled by another instance since this cycle read the states
        await asyncio.to_thread(leases.release, stale, now)
    return Claim(mine, states, tuple(sorted(held.items())))


class LeaseKeeper:
    """`async with LeaseKeeper(...) as keeper:` around a cycle's polls; `keeper.stored(id)`
    once a feed's poll is stored. Renews the leases still held every third of the lease;
    releases stored feeds at most every `RELEASE_EVERY`, those stored meanwhile together."""

    def __init__(self, leases: Leases, held: Sequence[str], lease: timedelta, clock: Clock):
        self._leases, self._lease, self._clock = leases, lease, clock
        self._held = set(held)
        self._done: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeaseKeeper:
        if self._held:
            self._task = asyncio.create_task(self._run(), name="monitor-leases")
        return self

    def stored(self, feed_id: str) -> None:
        self._done.add(feed_id)
        self._wake.set()

    async def _run(self) -> None:
        every = max(self._lease.total_seconds() / 3, 0.5)
        renew_at = asyncio.get_running_loop().time() + every
        while True:
            left = renew_at - asyncio.get_running_loop().time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(left, 0)):
                    await self._wake.wait()
            self._wake.clear()
            done, self._done = self._done, set()
            self._held -= done
            await self._write(self._leases.release, done, self._clock())
            if asyncio.get_running_loop().time() >= renew_at:
                renew_at = asyncio.get_running_loop().time() + every
                await self._write(self._leases.renew, set(self._held), self._clock() + self._lease)
            # The feeds stored meanwhile go in the next write: a write a feed cost a warm
            # poll of 1,000 feeds ~100 transactions beside the writer's, ~0.05 CPU-s.
            await asyncio.sleep(RELEASE_EVERY)

    @staticmethod
    async def _write(
        step: Callable[[set[str], datetime], None], feed_ids: set[str], when: datetime
    ) -> None:
        """A lease write, in a thread. One that fails is logged and the cycle goes on: the
        feeds are polled and stored all the same, and their leases run out on their own."""
        if not feed_ids:
            return
        try:
            await asyncio.to_thread(step, feed_ids, when)
        except MonitorError as error:
            log.warning("feed leases: %s (they run out on their own)", error)
        except Exception:
            log.exception("feed leases: unexpected error (they run out on their own)")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = self._held | self._done
        self._held, self._done = set(), set()
        await self._write(self._leases.release, left, self._clock())

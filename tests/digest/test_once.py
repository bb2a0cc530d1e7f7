"""Digests and surges once across instances: two instances are two `Store`s on one database
(a SQLite file, then a PostgreSQL database), doing the same thing at the same moment."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.digest.dispatch import claim_periods, cron_period, freeze_route, send_due
from monitor.models import Route
from monitor.service.delivery import DeliveryJob, Snapshot
from monitor.service.metrics import Metrics
from monitor.store import Store
from monitor.store.outbox import Outbox
from monitor.store.surges import Surges
from monitor.story.surge import Surge
from tests.digest.world import ENV, NOW, World, email_channels
from tests.support.receivers import SmtpCatcher
from tests.support.service import WAIT


@pytest.fixture
def other(world: World) -> Iterator[Store]:
    """A second instance's store on the world's database."""
    with Store(world.db) as store:
        yield store


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        start.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    return results


def test_one_route_frozen_by_two_instances_at_once_claims_each_item_once(
    world: World, other: Store
) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
    [route] = channels.routes
    Outbox(world.store).route_start(route.id, NOW - timedelta(hours=1))
    items = [world.add(f"g{n}", f"Taiwan Strait report {n}", ["strait"]) for n in range(30)]
    for _ in range(3):  # a race is a matter of chance: give it several
        frozen = at_once(
            *(
                lambda s=s: freeze_route(s, route, channels, world.rules, {}, NOW)
                for s in (world.store, other)
            )
        )
        assert any(f is not None for f in frozen)
        items.append(world.add(f"late{len(items)}", "Taiwan Strait again", ["strait"]))
    claimed = world.store._rows(
        "SELECT item_id, count(*) AS n FROM deliveries WHERE route_id = ? GROUP BY item_id",
        (route.id,),
    )
    assert {r["item_id"]: int(r["n"]) for r in claimed} == dict.fromkeys(items[:-1], 1)


def test_two_instances_sending_at_once_send_a_digest_once(world: World, other: Store) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        Outbox(world.store).route_start("desk-now", NOW - timedelta(hours=1))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None

        async def both() -> list[Any]:
            return await asyncio.gather(
                send_due(world.store, channels, ENV, NOW), send_due(other, channels, ENV, NOW)
            )

        attempts = asyncio.run(both())
    assert sorted(len(a) for a in attempts) == [0, 1]  # one took the lease, the other saw it
    assert len(smtp.messages) == 1
    assert Outbox(other).counts() == {"delivered": 1}


MORNING = """\
  - id: morning
    receiver: desk
    schedule: "0 7 * * *"
    send_empty: true
"""


async def test_a_cron_period_fired_by_two_instances_sends_one_digest(
    world: World, other: Store
) -> None:
    """Both schedulers fire for the same morning: the first instance sends that morning's
    digest; the second sends nothing, neither the match stored meanwhile nor a "nothing new"
    digest (the route has send_empty)."""
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port).split("  - id: desk-now")[0] + MORNING)
        snap = Snapshot(channels=channels, rules=world.rules, feeds={})
        now = datetime.now(UTC)
        Outbox(world.store).route_start("morning", now - timedelta(hours=1))
        jobs = [
            DeliveryJob(store, lambda: snap, Metrics(name), every=60, slow_after=60, env=ENV)
            for store, name in ((world.store, "a"), (other, "b"))
        ]
        try:
            jobs[0].route_due("morning")
            jobs[0].round()
            world.add("late", "Taiwan Strait news after the first send", ["strait"], published=now)
            jobs[1].route_due("morning")
            jobs[1].round()
            deadline = asyncio.get_running_loop().time() + WAIT
            while Outbox(other).counts() != {"delivered": 1}:
                assert asyncio.get_running_loop().time() < deadline, Outbox(other).counts()
                await asyncio.sleep(0.05)
        finally:
            for job in jobs:
                await job.stop(1.0)
    [mail] = smtp.messages
    assert b"Taiwan Strait news after" not in mail.data  # it waits for the next morning


def test_the_period_of_a_cron_send_is_the_fire_time_it_follows() -> None:
    daily = Route(id="r", receiver="desk", schedule="0 7 * * *", timezone="Asia/Tokyo")
    at = datetime(2025, 12, 2, 0, 0, 30, tzinfo=UTC)  # 09:00:30 in Tokyo
    assert cron_period(daily, at) == datetime(2025, 12, 1, 22, 0, tzinfo=UTC)  # 07:00 JST
    assert cron_period(daily, at + timedelta(hours=20)) == datetime(2025, 12, 1, 22, tzinfo=UTC)
    assert cron_period(daily, at + timedelta(hours=22)) == datetime(2025, 12, 2, 22, tzinfo=UTC)
    weekly = Route(id="w", receiver="desk", schedule="30 6 * * mon", timezone="UTC")
    assert cron_period(weekly, at) == datetime(2025, 12, 1, 6, 30, tzinfo=UTC)  # a Monday
    minutely = Route(id="m", receiver="desk", schedule="* * * * *", timezone="UTC")
    assert cron_period(minutely, at) == datetime(2025, 12, 2, 0, 0, tzinfo=UTC)


def test_claim_periods_gives_each_period_to_the_first_instance(world: World, other: Store) -> None:
    seven = datetime(2025, 12, 2, 7, 0, tzinfo=UTC)
    assert claim_periods(world.store, {"a": seven, "b": seven}, "one", NOW) == {"a", "b"}
    assert claim_periods(other, {"a": seven, "c": seven}, "two", NOW) == {"c"}
    tomorrow = seven + timedelta(days=1)
    assert claim_periods(other, {"a": tomorrow}, "two", NOW + timedelta(days=1)) == {"a"}


def test_a_surge_detected_by_two_instances_at_once_fires_once(world: World, other: Store) -> None:
    surge = Surge(
        kind="volume", key="rule:strait", why="12 matches in the last hour", fired_at=NOW,
        items=(1, 2), profile="p", facts={"last_hour": 12},
    )  # fmt: skip
    for n in range(3):  # three rounds, each past the last one's cooldown
        one = Surge(**{**surge.__dict__, "fired_at": NOW + n * timedelta(hours=2)})
        fired = at_once(
            *(
                lambda s=s, one=one: Surges(s).fire([one], timedelta(hours=1))
                for s in (world.store, other)
            )
        )
        assert sorted(len(f) for f in fired) == [0, 1]
    assert Surges(other).counts() == {"volume": 3}

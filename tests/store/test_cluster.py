"""Several instances on one database (store.cluster), each a `Store` of its own, on both
backends: feed leases claimed once, taken over when they run out or their holder died,
instances live and dead, cron periods claimed once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.store import Store
from monitor.store.cluster import Instance, Instances, Leases, claim_period, instance_id

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
FEEDS = [f"feed-{n:02d}" for n in range(40)]


@pytest.fixture
def two(db_target: str | Path) -> Iterator[tuple[Store, Store]]:
    """Two instances' stores on one database."""
    with Store(db_target) as a, Store(db_target) as b:
        yield a, b


def me(name: str, at: datetime = T0) -> Instance:
    return Instance(id=name, host="box", pid=7, started=at, seen=at, version="1.0")


def test_a_feed_claimed_by_one_is_not_claimed_by_another(two: tuple[Store, Store]) -> None:
    a, b = two
    assert Leases(a, "a").claim(FEEDS[:10], T0, T0 + LEASE) == set(FEEDS[:10])
    got = Leases(b, "b").claim(FEEDS[:20], T0 + timedelta(seconds=1), T0 + LEASE)
    assert got == set(FEEDS[10:20])
    # Its holder claims again what it holds (a restart under the same id takes its own back).
    assert Leases(a, "a").claim(FEEDS[:5], T0, T0 + LEASE) == set(FEEDS[:5])
    assert Leases(a, "a").holders(FEEDS[:20], T0) == dict.fromkeys(FEEDS[10:20], "b")


def test_claims_at_the_same_moment_share_the_feeds_out_disjointly(
    two: tuple[Store, Store],
) -> None:
    """Both instances claim all feeds at once, again and again (each round's leases run out
    before the next): every feed goes to exactly one of them every round."""
    stores = two
    rounds = 15
    got: dict[str, list[set[str]]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim(store: Store, name: str) -> None:
        leases = Leases(store, name)
        for n in range(rounds):
            now = T0 + n * LEASE * 2  # the previous round's leases have run out
            start.wait()
            got[name].append(leases.claim(FEEDS, now, now + LEASE))

    threads = [
        threading.Thread(target=claim, args=(s, n)) for s, n in zip(stores, "ab", strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for n in range(rounds):
        mine, theirs = got["a"][n], got["b"][n]
        assert not mine & theirs
        assert mine | theirs == set(FEEDS)


def test_an_expired_lease_is_taken_over_and_a_held_one_is_not(two: tuple[Store, Store]) -> None:
    a, b = two
    Leases(a, "a").claim(["x", "y"], T0, T0 + LEASE)
    assert Leases(b, "b").claim(["x", "y"], T0 + LEASE - timedelta(seconds=1), T0) == set()
    assert Leases(b, "b").claim(["x"], T0 + LEASE, T0 + 2 * LEASE) == {"x"}
    # Renewed, a lease outlives its first term; released, it is free at once.
    Leases(a, "a").renew(["y"], T0 + 3 * LEASE)
    assert Leases(b, "b").claim(["y"], T0 + 2 * LEASE, T0 + 4 * LEASE) == set()
    Leases(a, "a").release(["y"], T0 + 2 * LEASE)
    assert Leases(b, "b").claim(["y"], T0 + 2 * LEASE, T0 + 4 * LEASE) == {"y"}
    # Releasing or renewing what another holds now changes nothing.
    Leases(a, "a").release(["x", "y"], T0 + 2 * LEASE)
    assert Leases(a, "a").claim(["x", "y"], T0 + 2 * LEASE - timedelta(seconds=1), T0) == set()


def test_the_leases_of_a_dead_instance_are_free_before_they_run_out(
    two: tuple[Store, Store],
) -> None:
    a, b = two
    instances = Instances(a)
    instances.register(me("a"), T0 + timedelta(seconds=3), T0 - timedelta(days=1))
    Leases(a, "a").claim(["x"], T0, T0 + LEASE)
    assert Leases(b, "b").claim(["x"], T0 + timedelta(seconds=2), T0 + LEASE) == set()
    # Its heartbeat keeps it live...
    instances.beat(me("a"), T0 + timedelta(seconds=2), T0 + timedelta(seconds=5))
    assert Leases(b, "b").claim(["x"], T0 + timedelta(seconds=4), T0 + LEASE) == set()
    # ...until it stops: then its feeds are free, long before the lease runs out.
    assert Leases(b, "b").claim(["x"], T0 + timedelta(seconds=6), T0 + LEASE) == {"x"}


def test_instances_register_beat_and_leave(two: tuple[Store, Store]) -> None:
    a, b = two
    Instances(a).register(me("a"), T0 + timedelta(seconds=45), T0 - timedelta(days=1))
    Instances(b).register(me("b"), T0 + timedelta(seconds=45), T0 - timedelta(days=1))
    Leases(b, "b").claim(["x", "y"], T0, T0 + LEASE)
    live = Instances(a).live(T0 + timedelta(seconds=10))
    assert [(i.id, i.host, i.pid, i.feeds_held) for i in live] == [
        ("a", "box", 7, ()),
        ("b", "box", 7, ("x", "y")),
    ]
    assert live[0].started == T0 and live[0].version == "1.0"
    later = T0 + timedelta(seconds=40)
    Instances(a).beat(me("a"), later, later + timedelta(seconds=45))
    # b stopped beating: dead after its three ticks, and no longer listed.
    assert [i.id for i in Instances(a).live(T0 + timedelta(seconds=50))] == ["a"]
    assert Instances(b).live(later)[0].seen == later
    # A clean stop: gone from the list, and its leases free for others at once.
    Instances(b).leave("b", later)
    assert [i.id for i in Instances(a).live(later)] == ["a"]
    assert Leases(a, "a").claim(["x", "y"], later, later + LEASE) == {"x", "y"}


def test_a_beat_after_being_forgotten_registers_again(two: tuple[Store, Store]) -> None:
    a, b = two
    Instances(a).register(me("a"), T0 + timedelta(seconds=45), T0 - timedelta(days=1))
    # b starts a week later and forgets the instances dead for a day.
    week = T0 + timedelta(days=7)
    Instances(b).register(me("b", week), week + timedelta(seconds=45), week - timedelta(days=1))
    assert [i.id for i in Instances(b).live(week)] == ["b"]
    Instances(a).beat(me("a"), week, week + timedelta(seconds=45))
    assert [i.id for i in Instances(b).live(week)] == ["a", "b"]


def test_a_cron_period_is_claimed_once(two: tuple[Store, Store]) -> None:
    a, b = two
    assert claim_period(a, "morning", T0, "a", T0)
    assert not claim_period(b, "morning", T0, "b", T0 + timedelta(seconds=1))
    assert claim_period(b, "evening", T0, "b", T0)
    assert claim_period(b, "morning", T0 + timedelta(days=1), "b", T0 + timedelta(days=1))


def test_the_instance_id_is_the_host_and_pid_unless_named() -> None:
    assert instance_id({"MONITOR_INSTANCE": "replica-2"}) == "replica-2"
    default = instance_id({})
    host, _, pid = default.rpartition("-")
    assert host and pid.isdigit()


def test_a_running_instance_tries_its_fair_share_of_the_due_feeds(
    two: tuple[Store, Store],
) -> None:
    a, b = two
    alone = Leases(a, "a").fair_share(FEEDS, T0)
    assert alone == set(FEEDS)  # no instance registered but itself: all of them
    for name in ("a", "b", "c"):
        Instances(a).register(me(name), T0 + timedelta(seconds=45), T0 - timedelta(days=1))
    share = Leases(b, "b").fair_share(FEEDS, T0)
    assert len(share) == 14 and share <= set(FEEDS)  # ceil(40 / 3)
    # A dead instance (its promise ran out) no longer counts.
    later = T0 + timedelta(minutes=1)
    Instances(a).register(me("a", later), later + timedelta(seconds=45), T0 - timedelta(days=1))
    assert len(Leases(a, "a").fair_share(FEEDS, later)) == 40

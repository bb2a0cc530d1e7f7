"""Poll cycles of two instances on one database (each its own `Store`), on both backends: each
polls only the due feeds it claimed, never one another holds, and re-checks a claimed feed
against its state as stored now (another instance may have just polled it)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.ingest.claims import RELEASE_EVERY, LeaseKeeper, claim_due
from monitor.ingest.poll import poll_cycle
from monitor.models import Feed, FeedState, FetchStatus, Settings
from monitor.store import Store
from monitor.store.cluster import Leases
from tests.ingest.test_poll import rss
from tests.support.feedserver import Exchange, FeedServer, serve

SETTINGS = Settings(connect_timeout=2, read_timeout=1, total_timeout=3)


@pytest.fixture
def two(db_target: str | Path) -> Iterator[tuple[Store, Store]]:
    with Store(db_target) as a, Store(db_target) as b:
        yield a, b


def farm(server: FeedServer, count: int) -> list[Feed]:
    feeds = []
    for n in range(count):
        server.routes[f"/f{n}.xml"] = serve(rss((f"g{n}", f"Story {n}")))
        feeds.append(Feed(id=f"f{n}", url=server.url(f"/f{n}.xml")))
    return feeds


def polled(server: FeedServer, feeds: list[Feed]) -> dict[str, int]:
    return {f.id: len(server.requests_to(f"/{f.id}.xml")) for f in feeds}


async def test_two_instances_cycling_at_once_poll_each_feed_once(
    server: FeedServer, two: tuple[Store, Store]
) -> None:
    a, b = two
    feeds = farm(server, 12)
    first, second = await asyncio.gather(
        poll_cycle(feeds, a, SETTINGS, holder="a"), poll_cycle(feeds, b, SETTINGS, holder="b")
    )
    ids = [o.feed_id for o in (*first.outcomes, *second.outcomes)]
    assert sorted(ids) == sorted(f.id for f in feeds)
    assert polled(server, feeds) == dict.fromkeys((f.id for f in feeds), 1)
    assert a.count_items() == 12
    # Every lease is released once its poll is stored.
    assert Leases(a, "c").claim([f.id for f in feeds], datetime.now(UTC), datetime.now(UTC)) == {
        f.id for f in feeds
    }


async def test_a_feed_another_instance_holds_is_left_out_and_named(
    server: FeedServer, two: tuple[Store, Store]
) -> None:
    a, b = two
    feeds = farm(server, 3)
    now = datetime.now(UTC)
    Leases(b, "replica-2").claim(["f1"], now, now + timedelta(minutes=5))
    summary = await poll_cycle(feeds, a, SETTINGS, force=True, holder="replica-1")
    assert sorted(o.feed_id for o in summary.outcomes) == ["f0", "f2"]
    assert summary.held == (("f1", "replica-2"),)
    assert polled(server, feeds) == {"f0": 1, "f1": 0, "f2": 1}


async def test_a_feed_polled_by_another_instance_since_the_states_were_read_is_not_polled(
    server: FeedServer, two: tuple[Store, Store]
) -> None:
    """The stale-state race: B reads the states, A then polls X and releases it, and B claims
    X. B must see, once it holds X, that X is no longer due, and let it go unpolled."""
    a, b = two
    feeds = farm(server, 1)
    calls = 0

    def clock() -> datetime:
        # B's first look at the time comes right after it read the states: A's whole cycle
        # runs then, in a thread of its own (its own event loop), and is stored.
        nonlocal calls
        calls += 1
        if calls == 1:
            thread = threading.Thread(
                target=lambda: asyncio.run(poll_cycle(feeds, a, SETTINGS, holder="a"))
            )
            thread.start()
            thread.join(timeout=30)
        return datetime.now(UTC)

    summary = await poll_cycle(feeds, b, SETTINGS, holder="b", clock=clock)
    assert calls >= 1
    assert summary.outcomes == ()
    assert polled(server, feeds) == {"f0": 1}
    state = b.get_state("f0")
    assert state is not None and state.last_success is not None
    # B let the feed go: anyone may claim it.
    now = datetime.now(UTC)
    assert Leases(a, "c").claim(["f0"], now, now) == {"f0"}


async def test_a_lease_left_by_a_dead_cycle_runs_out_and_the_feed_is_polled(
    server: FeedServer, two: tuple[Store, Store]
) -> None:
    a, b = two
    feeds = farm(server, 1)
    past = datetime.now(UTC) - timedelta(minutes=10)
    Leases(b, "gone").claim(["f0"], past, past + timedelta(minutes=5))  # ran out 5 min ago
    summary = await poll_cycle(feeds, a, SETTINGS, holder="a")
    assert [(o.feed_id, o.status) for o in summary.outcomes] == [("f0", FetchStatus.OK)]


async def test_a_cycle_renews_the_leases_of_feeds_it_is_still_polling(
    server: FeedServer, two: tuple[Store, Store]
) -> None:
    """A feed whose poll outlasts its first lease stays with the cycle: the lease is renewed
    while it runs, so another instance cannot take it when the first term is over."""
    a, b = two
    answer = threading.Event()

    def held(exchange: Exchange) -> None:
        answer.wait(30)
        serve(rss(("g0", "Story 0")))(exchange)

    server.routes["/f0.xml"] = held
    feeds = [Feed(id="f0", url=server.url("/f0.xml"))]
    settings = dataclasses.replace(SETTINGS, total_timeout=30, read_timeout=30, lease=LEASE)
    start = datetime.now(UTC)
    cycle = asyncio.create_task(poll_cycle(feeds, a, settings, holder="a"))
    try:
        first_term = start + LEASE + timedelta(seconds=2)  # the claim's until, with slack
        deadline = asyncio.get_running_loop().time() + 30
        while not _leased_beyond(b, "f0", first_term):
            assert asyncio.get_running_loop().time() < deadline, "the lease was never renewed"
            await asyncio.sleep(0.05)
        # Past the first term, the feed is still the cycle's.
        assert Leases(b, "b").claim(["f0"], first_term, first_term + LEASE) == set()
    finally:
        answer.set()
        summary = await cycle
    assert [o.status for o in summary.outcomes] == [FetchStatus.OK]
    assert len(server.requests_to("/f0.xml")) == 1


LEASE = timedelta(seconds=6)


async def test_a_claim_reads_again_the_states_of_the_feeds_it_got_alone(
    two: tuple[Store, Store],
) -> None:
    """A service's tick may claim a few feeds of thousands: the states it reads again, to
    see that they are still due, are theirs, not every feed's."""
    a, b = two
    feeds = [Feed(id=f"f{n}", url=f"http://127.0.0.1:9/f{n}.xml") for n in range(3)]
    for feed in feeds:
        a.save_state(FeedState(feed.id, feed.url, configured_url=feed.url, etag=feed.id))
    now = datetime.now(UTC)
    Leases(b, "b").claim(["f1"], now, now + LEASE)
    claim = await claim_due(a, Leases(a, "a"), feeds, now, LEASE, lambda f, s: True)
    assert [f.id for f in claim.feeds] == ["f0", "f2"]
    assert {i: s.etag for i, s in claim.states.items()} == {"f0": "f0", "f2": "f2"}
    assert claim.held == (("f1", "b"),)


async def test_feeds_stored_one_after_another_are_released_a_few_writes_in_all(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write a feed was ~100 transactions a warm poll of 1,000 feeds, beside the writer's:
    feeds stored while a release waits go in the next one."""
    a, b = two
    ids = [f"f{n}" for n in range(30)]
    leases = Leases(a, "a")
    now = datetime.now(UTC)
    assert leases.claim(ids, now, now + timedelta(minutes=5)) == set(ids)
    writes: list[int] = []
    release = leases.release

    def counted(feed_ids: set[str], when: datetime) -> None:
        writes.append(len(feed_ids))
        release(feed_ids, when)

    monkeypatch.setattr(leases, "release", counted)
    started = asyncio.get_running_loop().time()
    async with LeaseKeeper(leases, ids, timedelta(minutes=5), lambda: datetime.now(UTC)) as keeper:
        for feed_id in ids:  # a feed stored every 10 ms: 0.3 s in all
            keeper.stored(feed_id)
            await asyncio.sleep(0.01)
    took = asyncio.get_running_loop().time() - started
    # One write when the first is stored, one a RELEASE_EVERY at most, one at the end.
    assert sum(writes) == len(ids) and len(writes) <= 2 + took / RELEASE_EVERY
    now = datetime.now(UTC)
    assert Leases(b, "b").claim(ids, now, now + LEASE) == set(ids)  # all released


def _leased_beyond(store: Store, feed_id: str, when: datetime) -> bool:
    rows = store._rows("SELECT leased_until FROM feed_leases WHERE feed_id = ?", (feed_id,))
    return bool(rows) and datetime.fromisoformat(rows[0]["leased_until"]) > when

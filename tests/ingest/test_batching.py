"""Many feeds per store transaction (`Store.save_batch`, `ingest.writer.BatchWriter`), and what
must stay true with it: a feed whose save fails loses nothing of the others in its batch."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.errors import StoreError
from monitor.ingest.poll import IN_HAND_PER_REQUEST, Enriched, Parser, poll_cycle
from monitor.ingest.writer import BatchWriter
from monitor.match.rule import Hit, Match
from monitor.models import (
    EntityTag,
    Feed,
    FeedState,
    FetchStatus,
    Item,
    Settings,
    StoreResult,
)
from monitor.store import Store
from monitor.store.rows import _ITEM_COLUMNS, _item_row, _row
from monitor.store.saving import FeedSave, match_row, prepare
from tests.ingest.test_poll import rss
from tests.support.feedserver import FeedServer, serve

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(connect_timeout=2, read_timeout=1, total_timeout=3)
# A real failure of one feed's writes, made by the database itself: its inserts are refused.
# On PostgreSQL the failed statement aborts the transaction: only the savepoint recovers it.
FAIL_BAD = """CREATE TRIGGER test_fail_bad BEFORE INSERT ON items WHEN new.feed_id = 'bad'
    BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"""
FAIL_BAD_PG = (
    """CREATE FUNCTION test_fail_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'check_violation'; END $$""",
    """CREATE TRIGGER test_fail_bad BEFORE INSERT ON items FOR EACH ROW
    WHEN (NEW.feed_id = 'bad') EXECUTE FUNCTION test_fail_bad()""",
)
REFUSED = (sqlite3.IntegrityError, psycopg.IntegrityError)  # what either backend raises


def item(feed_id: str, guid: str, title: str = "Coast guard patrol") -> Item:
    return Item(
        feed_id=feed_id, guid=guid, link=f"https://news.example.org/{guid}", title=title,
        summary=f"{title}, the ministry said.", html="", author=None, lang="en",
        published=T0, first_seen=T0, content_hash=f"{guid}|{title}",
    )  # fmt: skip


def state(feed_id: str, etag: str = '"v1"') -> FeedState:
    return FeedState(feed_id, f"https://{feed_id}.example.org/feed.xml", etag=etag)


def save(feed_id: str, *guids: str) -> FeedSave:
    return FeedSave(feed_id, [item(feed_id, g) for g in guids], state(feed_id))


def fail_bad_feed(store: Store) -> None:
    with store._write() as conn:
        for sql in FAIL_BAD_PG if store.backend == "postgresql" else (FAIL_BAD,):
            conn.execute(sql)


# --- Store.save_batch ----------------------------------------------------------------------


def test_a_batch_stores_every_feed_with_its_state(store: Store) -> None:
    results = store.save_batch([save("a", "a1", "a2"), save("b", "b1"), save("c")])
    assert results == [StoreResult(new=2), StoreResult(new=1), StoreResult()]
    assert [store.count_items(f) for f in "abc"] == [2, 1, 0]
    assert {f: s.etag for f, s in store.states().items()} == {f: '"v1"' for f in "abc"}
    assert [s.item.guid for s in store.search("coast", feed_id="a")] == ["a2", "a1"]  # indexed


def test_a_feed_whose_save_fails_is_rolled_back_alone(store: Store) -> None:
    fail_bad_feed(store)
    results = store.save_batch([save("a", "a1"), save("bad", "x1", "x2"), save("c", "c1")])
    assert results[0] == results[2] == StoreResult(new=1)
    assert isinstance(results[1], REFUSED)
    assert "refused for the test" in str(results[1])
    assert (store.count_items("a"), store.count_items("bad"), store.count_items("c")) == (1, 0, 1)
    # Its state is not written either: the next poll fetches the same items again.
    assert store.get_state("bad") is None and store.get_state("c") is not None


def test_a_feed_with_items_of_another_feed_is_refused_alone(store: Store) -> None:
    wrong = FeedSave("a", [item("b", "b1")], state("a"))
    results = store.save_batch([wrong, save("c", "c1")])
    assert isinstance(results[0], ValueError) and "must be of that feed" in str(results[0])
    assert results[1] == StoreResult(new=1)


def test_a_full_disk_fails_the_whole_batch_and_leaves_nothing(tmp_path: Path) -> None:
    # A page limit is SQLite's own way to fill the disk (the file's, so SQLite only).
    with Store(tmp_path / "monitor.db") as store:
        pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
        store._db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        many = [FeedSave("a", [item("a", f"a{n}", "x" * 2000) for n in range(50)], state("a"))]
        with pytest.raises(StoreError, match="disk is full"):
            store.save_batch([save("b", "b1"), *many])
        assert store.count_items() == 0 and store.states() == {}


def test_prepared_rows_are_used_only_for_the_items_they_were_made_of(store: Store) -> None:
    plain = item("a", "a1", "Coast guard patrol")
    edited = item("a", "a2", "Fishing fleet returns")
    # The rows given for a2 are stale (made of another title): a2 is enriched into a new
    # object, so its rows must be made again, from the item actually stored.
    stale = prepare(item("a", "a2", "Something else entirely"))

    def enrich(i: Item) -> tuple[Item, Sequence[object]]:
        return (i if i is plain else Item(**{**vars(i), "regions": ("TW",)})), ()

    batch = FeedSave("a", [plain, edited], state("a"), enrich, None, [prepare(plain), stale])
    assert store.save_batch([batch]) == [StoreResult(new=2)]
    assert [s.item.guid for s in store.search("fishing")] == ["a2"]
    assert store.search("entirely") == []
    assert store.region_counts() == {"TW": 1}


# --- BatchWriter ---------------------------------------------------------------------------


class CountingStore(Store):
    """A real store that records the size of each batch it writes."""

    batches: list[int]

    def save_batch(self, saves: Sequence[FeedSave]) -> list[StoreResult | Exception]:
        self.batches.append(len(saves))
        return super().save_batch(saves)


async def test_saves_queued_together_are_written_in_one_transaction(tmp_path: Path) -> None:
    with CountingStore(tmp_path / "monitor.db") as db:
        db.batches = []
        async with BatchWriter(db) as writer:
            saves = [save(f"f{n}", f"g{n}") for n in range(6)]
            results = await asyncio.gather(*(writer.save(s) for s in saves))
        assert results == [StoreResult(new=1)] * 6
        assert db.batches == [6]


async def test_the_writer_bounds_a_transaction_and_keeps_every_save(tmp_path: Path) -> None:
    with CountingStore(tmp_path / "monitor.db") as db:
        db.batches = []
        async with BatchWriter(db, max_batch=4) as writer:
            saves = [save(f"f{n}", f"g{n}") for n in range(10)]
            await asyncio.gather(*(writer.save(s) for s in saves))
        assert db.batches == [4, 4, 2]
        assert db.count_items() == 10


async def test_a_feed_s_failed_save_raises_in_its_own_poll_only(store: Store) -> None:
    fail_bad_feed(store)
    async with BatchWriter(store) as writer:
        good, bad = writer.save(save("a", "a1")), writer.save(save("bad", "x1"))
        results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0] == StoreResult(new=1)
    assert isinstance(results[1], REFUSED)


async def test_saving_outside_async_with_is_a_programming_error(store: Store) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await BatchWriter(store).save(save("a", "a1"))


# --- a whole cycle ---------------------------------------------------------------------------


async def test_a_cycle_keeps_other_feeds_items_when_one_feed_s_save_fails(store: Store) -> None:
    fail_bad_feed(store)
    with FeedServer() as server:
        names = ["bad", *(f"f{n}" for n in range(9))]
        feeds = [
            Feed(id=name, url=server.add(f"/{name}.xml", serve(rss((f"{name}-1", "Strait")))))
            for name in names
        ]
        summary = await poll_cycle(feeds, store, SETTINGS)
    outcomes = {o.feed_id: o for o in summary.outcomes}
    assert outcomes["bad"].status is FetchStatus.ERROR
    assert "refused for the test" in (outcomes["bad"].error or "")
    assert all(outcomes[f"f{n}"].status is FetchStatus.OK for n in range(9))
    assert [store.count_items(f"f{n}") for n in range(9)] == [1] * 9
    assert store.count_items("bad") == 0
    assert store.get_state("bad") is None  # polled again next time: nothing lost


# --- bodies never pile up ----------------------------------------------------------------------


class HeldParser(Parser):
    """Inline parsing that waits for the test's go-ahead, as slow workers would."""

    def __init__(self) -> None:
        super().__init__(0)
        self.go = asyncio.Event()
        self.waiting = 0

    async def run(self, *args: Any, **kwargs: Any) -> Enriched | str:
        self.waiting += 1
        await self.go.wait()
        return await super().run(*args, **kwargs)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    return condition()


async def test_fetching_waits_while_the_parsers_are_behind(store: Store) -> None:
    settings = Settings(concurrency=1, connect_timeout=2, read_timeout=1, total_timeout=3)
    in_hand = IN_HAND_PER_REQUEST * settings.concurrency
    parser = HeldParser()
    with FeedServer() as server:
        feeds = [
            Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", serve(rss((f"g{n}", "Strait")))))
            for n in range(3 * in_hand)
        ]
        cycle = asyncio.create_task(poll_cycle(feeds, store, settings, parser=parser))
        assert await until(lambda: parser.waiting == in_hand)
        # The fetcher is idle now, although most feeds are still to fetch: the bodies in hand
        # are bounded. (A short grace to let a wrong implementation show itself.)
        await asyncio.sleep(0.2)
        assert len(server.requests) == parser.waiting == in_hand
        parser.go.set()
        summary = await cycle
    assert len(summary.outcomes) == len(feeds)
    assert all(o.status is FetchStatus.OK for o in summary.outcomes)


def test_an_item_s_fast_row_is_the_generic_row() -> None:
    tagged = Item(
        **{
            **vars(item("a", "a1")),
            "regions": ("TW", "CN"),
            "entities": (EntityTag("org:pla", "org", "title", 0, 3),),
            "link": None,
        }
    )
    for one in (item("a", "a2"), tagged):
        assert _item_row(one) == _row(one, _ITEM_COLUMNS)


def test_a_match_given_as_its_row_is_stored_as_the_match_itself(tmp_path: Path) -> None:
    match = Match("strait", 2.5, [Hit("strait", "title", 0, 6)])
    stored = []
    for name, given in (("object", match), ("row", match_row(match))):
        with Store(tmp_path / f"{name}.db") as db:
            one = item("a", "a1")
            db.save_batch([FeedSave("a", [one], state("a"), lambda i, m=given: (i, [m]))])
            with sqlite3.connect(db.path) as conn:
                stored.append(conn.execute("SELECT rule_id, score, hits FROM matches").fetchall())
    assert stored[0] == stored[1] and len(stored[0]) == 1


class NoLookupStore(Store):
    """A real store that counts per-feed state lookups."""

    lookups = 0

    def get_state(self, feed_id: str) -> FeedState | None:
        self.lookups += 1
        return super().get_state(feed_id)


async def test_a_cycle_reads_the_states_once_not_per_feed(tmp_path: Path) -> None:
    # A per-feed read would wait for the writer's lock, and the whole cycle with it.
    with NoLookupStore(tmp_path / "monitor.db") as db, FeedServer() as server:
        feeds = [
            Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", serve(rss((f"g{n}", "Strait")))))
            for n in range(4)
        ]
        first = await poll_cycle(feeds, db, SETTINGS)
        second = await poll_cycle(feeds, db, SETTINGS, force=True)
        assert [o.status for o in first.outcomes] == [FetchStatus.OK] * 4
        assert [o.status for o in second.outcomes] == [FetchStatus.NOT_MODIFIED] * 4
        assert db.lookups == 0

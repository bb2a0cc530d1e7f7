"""Linking stored items to stories (`monitor.ingest.linking`) on both backends: a real SQLite
file and a real PostgreSQL database (`db_target`).

The plumbing is tested with `ByRegion`, a tiny linker whose decisions these tests control
(a report joins the open story that shares a region with it), so nothing here depends on how
good the real linker is. Items are stored through `save_items`, as a poll stores them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import ConfigError
from monitor.ingest import linking
from monitor.ingest.feeds import load_feeds
from monitor.ingest.linking import link_pending, link_stories, linking_alongside
from monitor.models import FeedState, Item, Settings
from monitor.store import Store
from monitor.story.linker import Decision, Linker, Report

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WINDOW = timedelta(hours=48)


class ByRegion(Linker):
    """Joins the open story (last report within the window) that shares a region. Keeps its
    own members: only `Linker`'s interface is relied on, not its insides."""

    def __init__(self, window: timedelta) -> None:
        super().__init__(window)
        self.members: dict[int, list[Report]] = {}

    def decide(self, report: Report) -> Decision:
        for story, reports in sorted(self.members.items()):
            shared = set(report.regions) & {r for x in reports for r in x.regions}
            recent = max(x.published for x in reports) >= report.published - self.window
            if shared and recent:
                return Decision(story, 1.0, tuple(f"region {r}" for r in sorted(shared)))
        return Decision(None)

    def add(self, story: int, report: Report) -> None:
        self.members.setdefault(story, []).append(report)


class Broken(Linker):
    def decide(self, report: Report) -> Decision:
        raise RuntimeError("linker bug")


def item(guid: str, hours: float, regions: tuple[str, ...], feed: str = "wire") -> Item:
    values: dict[str, Any] = {
        "feed_id": feed,
        "guid": guid,
        "link": None,
        "title": guid,
        "summary": "",
        "html": "",
        "author": None,
        "lang": "en",
        "published": T0 + timedelta(hours=hours),
        "first_seen": T0 + timedelta(hours=hours),
        "content_hash": guid,
        "regions": regions,
    }
    return Item(**values)


def save(store: Store, *items: Item) -> dict[str, int]:
    for feed in dict.fromkeys(i.feed_id for i in items):
        batch = [i for i in items if i.feed_id == feed]
        store.save_items(feed, batch, FeedState(feed, f"https://{feed}.example.org/"))
    return {r["guid"]: r["id"] for r in store._rows("SELECT id, guid FROM items")}


def stories(store: Store, ids: dict[str, int]) -> dict[str, int]:
    by_item = store.item_stories(ids.values())
    return {guid: by_item[i] for guid, i in ids.items() if i in by_item}


@pytest.fixture
def store(db_target: str | Path) -> Iterator[Store]:
    with Store(db_target) as opened:
        yield opened


def test_each_new_item_joins_a_story_or_starts_one_with_why(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 1, ("TW", "CN")), item("c", 2, ("KP",)))
    assert link_pending(store, WINDOW, ByRegion) == 3
    got = stories(store, ids)
    assert got["a"] == got["b"] != got["c"]
    (first, joined) = store.story_links(got["a"])
    assert (first.stored.id, first.why, first.started) == (ids["a"], (), True)
    assert (joined.stored.id, joined.why, joined.score) == (ids["b"], ("region TW",), 1.0)
    assert not joined.started
    assert store.pending_stories() == []
    assert link_pending(store, WINDOW, ByRegion) == 0  # nothing is linked twice


def test_a_later_run_loads_the_open_stories_from_the_store(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)))
    link_pending(store, WINDOW, ByRegion)
    ids = save(store, item("b", 30, ("TW",)), item("late", 100, ("TW",), feed="other"))
    link_pending(store, WINDOW, ByRegion)
    got = stories(store, ids)
    assert got["b"] == got["a"]  # joined a story made by an earlier run
    assert got["late"] != got["a"]  # 70 h after its last report: that story was closed
    story = store.get_story(got["a"])
    assert story is not None and story.reports == 2 and story.last_seen == T0 + timedelta(hours=30)


def test_a_split_survives_later_linking(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 1, ("TW",)))
    link_pending(store, WINDOW, ByRegion)
    old, new = store.split_item(ids["b"])
    ids = save(store, item("c", 2, ("TW",)), item("d", 3, ("KP",)))
    link_pending(store, WINDOW, ByRegion)
    got = stories(store, ids)
    assert got["a"] == old and got["b"] == new  # nothing moved back
    assert got["c"] in (old, new) and got["d"] not in (old, new)
    (split,) = [x for x in store.story_links(new) if x.stored.id == ids["b"]]
    assert split.manual


def test_a_merge_survives_later_linking(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 1, ("KP",)))
    link_pending(store, WINDOW, ByRegion)
    got = stories(store, ids)
    store.merge_stories(got["a"], got["b"])
    ids = save(store, item("c", 2, ("KP",)))
    link_pending(store, WINDOW, ByRegion)
    after = stories(store, ids)
    assert after["a"] == after["b"] == after["c"] == got["a"]
    assert store.get_story(got["b"]) is None and store.merged_into(got["b"]) == got["a"]


def test_old_news_of_a_first_poll_gets_stories_too(store: Store) -> None:
    ids = save(store, item("old1", -24 * 60, ("TW",)), item("old2", -24 * 60 + 1, ("TW",)))
    link_pending(store, WINDOW, ByRegion)
    got = stories(store, ids)
    assert got["old1"] == got["old2"]


def test_a_linker_failure_loses_nothing(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    ids = save(store, item("a", 0, ("TW",)))
    with caplog.at_level(logging.ERROR, logger="monitor.stories"):
        asyncio.run(link_stories(store, Settings(), Broken))
    assert "the next cycle tries again" in caplog.text
    assert [s.id for s in store.pending_stories()] == [ids["a"]]
    asyncio.run(link_stories(store, Settings(), ByRegion))
    assert set(stories(store, ids)) == {"a"}


def test_the_linker_is_kept_while_the_store_is_as_it_left_it(db_target: str | Path) -> None:
    made: list[Linker] = []

    def make(window: timedelta) -> Linker:
        made.append(ByRegion(window))
        return made[-1]

    store = Store(db_target)
    save(store, item("a", 0, ("TW",)))
    link_pending(store, WINDOW, make)
    ids = save(store, item("b", 1, ("TW",)), item("c", 2, ("KP",)))
    link_pending(store, WINDOW, make)
    assert len(made) == 1  # kept: nothing else wrote links
    got = stories(store, ids)
    assert got["a"] == got["b"] != got["c"]  # a story it started earlier has its real id
    # Another process links items into the same database: this one's linker is rebuilt.
    with Store(db_target) as other:
        save(other, item("d", 3, ("KP",), feed="other"))
        link_pending(other, WINDOW, make)
    save(store, item("e", 4, ("JP",)))
    link_pending(store, WINDOW, make)
    assert len(made) == 3
    store.close()


def test_a_split_by_hand_is_what_the_linker_sees_next(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 1, ("TW", "KP")))
    link_pending(store, WINDOW, ByRegion)
    _, new = store.split_item(ids["b"])
    # A linker that still held b in a's story would put c (KP) there.
    ids = save(store, item("c", 2, ("KP",)))
    link_pending(store, WINDOW, ByRegion)
    assert stories(store, ids)["c"] == new


def test_a_merge_by_hand_is_what_the_linker_sees_next(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 1, ("KP",)))
    link_pending(store, WINDOW, ByRegion)
    got = stories(store, ids)
    store.merge_stories(got["b"], got["a"])
    ids = save(store, item("c", 2, ("TW",)))
    link_pending(store, WINDOW, ByRegion)
    assert stories(store, ids)["c"] == got["b"]  # TW is in b's story now


def test_the_window_is_a_setting_of_feeds_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("settings:\n  stories: {window: 12h}\n", encoding="utf-8")
    assert load_feeds(path).settings.story_window == timedelta(hours=12)
    assert Settings().story_window == timedelta(hours=48)
    for text, message in [
        ("settings:\n  stories: {windw: 12h}\n", "windw"),
        ("settings:\n  stories: {window: 1m}\n", "stories.window"),
        ("settings:\n  stories: 48h\n", "'stories' must be a mapping"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_feeds(path)
        assert message in str(caught.value) and "feeds.yaml:" in str(caught.value)
        assert "\n" not in str(caught.value)


def test_a_shorter_window_closes_stories_sooner(store: Store) -> None:
    ids = save(store, item("a", 0, ("TW",)), item("b", 13, ("TW",)))
    link_pending(store, timedelta(hours=12), ByRegion)
    got = stories(store, ids)
    assert got["a"] != got["b"]


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (on the event loop, which the linking needs) until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def test_a_cycle_links_full_batches_while_it_stores_and_the_rest_at_its_end(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linking, "BATCH", 3)

    async def cycle() -> None:
        async with linking_alongside(store, Settings(), ByRegion):
            save(store, *(item(f"tw{n}", n, ("TW",)) for n in range(4)))
            # One full batch is linked while the cycle goes on; one item waits for more.
            await _until(lambda: store.pending_count() == 1)
            assert len(store.item_stories(range(1, 5))) == 3
            save(store, item("kp", 5, ("KP",)))
        assert store.pending_count() == 0  # the rest, once the cycle's saves are done

    asyncio.run(cycle())
    got = stories(store, save(store))
    assert len({got[f"tw{n}"] for n in range(4)}) == 1 and got["kp"] != got["tw0"]


def test_a_cycle_that_fails_leaves_its_last_items_queued(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linking, "BATCH", 3)

    async def cycle() -> None:
        async with linking_alongside(store, Settings(), ByRegion):
            save(store, item("a", 0, ("TW",)))
            raise RuntimeError("the cycle was stopped")

    with pytest.raises(RuntimeError):
        asyncio.run(cycle())
    assert store.pending_count() == 1  # not a full batch: the next cycle links it


def test_a_cycle_links_the_same_stories_whichever_feed_answered_first(tmp_path: Path) -> None:
    # A, B, C published in that order; C shares a region with each of the others, which share
    # none: linked as published, C can join only one of their stories; linked as stored with
    # C first, it would gather all three.
    a, b, c = (
        item("a", 0, ("TW",), "fa"),
        item("b", 1, ("KP",), "fb"),
        item("c", 2, ("TW", "KP"), "fc"),
    )
    groups = []
    for n, order in enumerate(((a, b, c), (c, a, b), (b, c, a))):
        with Store(tmp_path / f"{n}.db") as store:
            ids = save(store, *order)
            assert link_pending(store, WINDOW, ByRegion) == 3
            by_story: dict[int, set[str]] = {}
            for guid, story in stories(store, ids).items():
                by_story.setdefault(story, set()).add(guid)
            groups.append(sorted(map(sorted, by_story.values())))
    assert groups[0] == groups[1] == groups[2]
    assert len(groups[0]) == 2, groups[0]

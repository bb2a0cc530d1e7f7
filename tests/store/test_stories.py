"""Stories in the store (migration m010, `monitor.store.stories`) on both backends: a real
SQLite file and a real PostgreSQL database (`db_target`).

Items are stored through `save_items` as the poll stores them; the story decisions are
written by hand (`NewLink`), so these tests are about the recording, not about linking.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from monitor.models import EntityTag, FeedState, Item
from monitor.store import Store, pg
from monitor.store.stories import NewLink
from monitor.store.storyrows import aggregate

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def item(feed: str, guid: str, hours: float, lang: str = "en", **kw: Any) -> Item:
    values: dict[str, Any] = {
        "feed_id": feed,
        "guid": guid,
        "link": f"https://{feed}.example.org/{guid}",
        "title": f"Report {guid}",
        "summary": "",
        "html": "",
        "author": None,
        "lang": lang,
        "published": T0 + timedelta(hours=hours),
        "first_seen": T0 + timedelta(hours=hours),
        "content_hash": guid,
    }
    values.update(kw)
    return Item(**values)


def tag(entity: str) -> EntityTag:
    return EntityTag(entity, "person", "title", 0, 3)


def save(store: Store, *items: Item) -> list[int]:
    """Store items feed by feed; return their ids in the order given."""
    for feed in dict.fromkeys(i.feed_id for i in items):
        batch = [i for i in items if i.feed_id == feed]
        store.save_items(feed, batch, FeedState(feed, f"https://{feed}.example.org/"))
    found = {r["guid"]: r["id"] for r in store._rows("SELECT id, guid FROM items")}
    return [found[i.guid] for i in items]


@pytest.fixture
def store(db_target: str | Path) -> Iterator[Store]:
    with Store(db_target) as opened:
        yield opened


def test_new_items_wait_for_a_story_and_links_make_stories(store: Store) -> None:
    a, b, c = save(
        store,
        item("wire", "a", 2, regions=("TW",), entities=(tag("lai-ching-te"),)),
        item("tokyo", "b", 1, lang="ja", regions=("TW", "CN"), entities=(tag("lai-ching-te"),)),
        item("wire", "c", 3, regions=("KP",)),
    )
    assert [s.id for s in store.pending_stories()] == sorted([a, b, c])  # as stored
    made = store.save_links(
        [NewLink(a, -1, 0.0, ()), NewLink(b, -1, 0.8, ("region TW",)), NewLink(c, -2, 0.0, ())]
    )
    assert store.pending_stories() == []
    assert store.item_stories([a, b, c, 999]) == {a: made[-1], b: made[-1], c: made[-2]}
    story = store.get_story(made[-1])
    assert story is not None
    assert (story.first_seen, story.last_seen) == (T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert story.reports == 2
    assert story.outlets == ("tokyo", "wire")  # in the order they first reported
    assert story.languages == ("ja", "en")
    assert story.regions == ("TW", "CN")  # most named first
    assert story.entities == ("lai-ching-te",)
    assert story.headline_item == b
    members = store.story_members([made[-1], made[-2]])
    assert [m.id for m in members[made[-1]]] == [b, a]  # oldest first
    assert [m.id for m in members[made[-2]]] == [c]
    assert store.get_story(12345) is None


def test_a_link_is_recorded_once_and_a_joined_story_grows(store: Store) -> None:
    (a,) = save(store, item("wire", "a", 0))
    made = store.save_links([NewLink(a, -1, 0.0, ())])
    (b,) = save(store, item("tokyo", "b", 5, lang="ja"))
    # A second decision for an item already linked (another process got there first) is
    # ignored, and so is a link for an item that is not pending.
    again = store.save_links([NewLink(b, made[-1], 0.7, ("entity x",)), NewLink(a, -5, 0, ())])
    assert again == {}
    assert store.item_stories([a, b]) == {a: made[-1], b: made[-1]}
    story = store.get_story(made[-1])
    assert story is not None and story.reports == 2
    assert story.last_seen == T0 + timedelta(hours=5)
    links = store.story_links(made[-1])
    assert [(x.stored.id, x.why, x.manual) for x in links] == [
        (a, (), False),
        (b, ("entity x",), False),
    ]


def test_split_moves_an_item_to_a_story_of_its_own(store: Store) -> None:
    a, b = save(store, item("wire", "a", 0), item("tokyo", "b", 1, lang="ja"))
    made = store.save_links([NewLink(a, -1, 0.0, ()), NewLink(b, -1, 0.5, ("x",))])
    old, new = store.split_item(b)
    assert old == made[-1] and new != old
    assert store.item_stories([a, b]) == {a: old, b: new}
    kept = store.get_story(old)
    assert kept is not None and (kept.reports, kept.outlets) == (1, ("wire",))
    (link,) = store.story_links(new)
    assert link.manual and link.why == ("split by hand",)
    with pytest.raises(ValueError, match="already the only report"):
        store.split_item(b)
    with pytest.raises(KeyError):
        store.split_item(424242)


def test_merge_moves_every_report_and_remembers_where(store: Store) -> None:
    a, b, c = save(store, item("wire", "a", 0), item("tokyo", "b", 1, lang="ja"), item("x", "c", 2))
    made = store.save_links(
        [NewLink(a, -1, 0, ()), NewLink(b, -2, 0, ()), NewLink(c, -2, 0.5, ("entity x",))]
    )
    into, other = made[-1], made[-2]
    assert store.merge_stories(into, other) == 2
    moved = {x.stored.id: x for x in store.story_links(into)}
    assert moved[c].why == ("entity x", f"merged by hand from story {other}")
    assert moved[c].manual and not moved[b].started and moved[a].started
    assert store.get_story(other) is None
    assert store.merged_into(other) == into
    assert store.merged_into(into) is None
    story = store.get_story(into)
    assert story is not None and story.reports == 3 and story.languages == ("en", "ja")
    # A decision naming the merged story (a linker loaded before the merge) follows it.
    (d,) = save(store, item("wire", "d", 3))
    store.save_links([NewLink(d, other, 0.9, ("same",))])
    assert store.item_stories([d]) == {d: into}
    with pytest.raises(KeyError):
        store.merge_stories(into, 999)
    with pytest.raises(ValueError, match="itself"):
        store.merge_stories(into, into)


def test_a_decision_naming_a_merged_story_is_followed_within_the_write(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a write holds one pooled connection (and the write lock) until it ends:
    following a merge reads through it rather than waiting for another (here there is none)."""
    monkeypatch.setattr(pg, "POOL_SIZE", 1)
    monkeypatch.setattr(pg, "CONNECT_TIMEOUT", 2.0)
    with Store(pg_url) as store:
        a, b = save(store, item("w", "a", 0), item("t", "b", 1))
        made = store.save_links([NewLink(a, -1, 0, ()), NewLink(b, -2, 0, ())])
        store.merge_stories(made[-1], made[-2])
        (c,) = save(store, item("w", "c", 2))
        store.save_links([NewLink(c, made[-2], 0.9, ("same",))])  # a linker loaded before
        assert store.item_stories([c]) == {c: made[-1]}


def test_merging_twice_follows_the_chain(store: Store) -> None:
    ids = save(store, item("w", "a", 0), item("w", "b", 1), item("w", "c", 2))
    made = store.save_links([NewLink(i, -n - 1, 0, ()) for n, i in enumerate(ids)])
    store.merge_stories(made[-2], made[-1])
    store.merge_stories(made[-3], made[-2])
    assert store.merged_into(made[-1]) == made[-3]


def test_retention_updates_stories_and_deletes_emptied_ones(store: Store) -> None:
    a, b, c = save(store, item("w", "a", 0), item("t", "b", 30, lang="ja"), item("w", "c", 1))
    made = store.save_links([NewLink(a, -1, 0, ()), NewLink(b, -1, 0, ()), NewLink(c, -2, 0, ())])
    assert store.prune(T0 + timedelta(hours=2)) == 2  # a and c
    assert store.get_story(made[-2]) is None
    story = store.get_story(made[-1])
    assert story is not None
    assert (story.reports, story.outlets, story.headline_item) == (1, ("t",), b)
    assert story.first_seen == T0 + timedelta(hours=30)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-icu"])
def any_collation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite, on PostgreSQL, and on a PostgreSQL database whose collation is not
    code point order (ICU en-US: `abc` before `Zed`), as many servers are set up."""
    if request.param == "sqlite":
        target: str | Path = tmp_path / "monitor.db"
    else:
        target = str(request.getfixturevalue("pg_url"))
    if request.param == "postgresql-icu":
        import psycopg

        name = urlsplit(target).path.strip("/") + "_icu"
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu'
                " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        target = urlunsplit(urlsplit(target)._replace(path="/" + name))
    with Store(target) as opened:
        yield opened


def test_retention_leaves_the_aggregates_the_linker_would_compute(any_collation: Store) -> None:
    """The trigger that recomputes a story when retention deletes reports (SQL, PL/pgSQL on
    PostgreSQL) agrees with `storyrows.aggregate`: ties broken by name in code point order."""
    store = any_collation
    one = dict(regions=("TW", "CN"), entities=(tag("Xi"), tag("abe")))
    twice = (tag("Ab"), EntityTag("Ab", "person", "summary", 0, 2))  # one report: counts once
    old, a, b, c, d = save(
        store,
        item("zz", "old", -5, lang="ko", regions=("TW",), entities=(tag("Xi"),)),
        item("Wire", "a", 0, **one),
        item("agency", "b", 0, lang="ja", regions=("CN", "KP"), entities=(tag("abe"),)),
        item("bbc", "c", 1, lang="zh", regions=("KP", "TW"), entities=(tag("Xi"),)),
        item("bbc", "d", 2, lang=None, summary="Ab", entities=twice),
    )
    made = store.save_links([NewLink(i, -1, 0, ()) for i in (old, a, b, c, d)])
    before = store.get_story(made[-1])
    assert before is not None and before.outlets[0] == "zz" and before.regions[0] == "TW"
    assert store.prune(T0 - timedelta(hours=1)) == 1  # the old report goes
    story = store.get_story(made[-1])
    assert story is not None
    assert (story.reports, story.first_seen, story.headline_item) == (4, T0, min(a, b))
    assert story.outlets == ("Wire", "agency", "bbc")  # a tie at T0: code point order
    assert story.languages == ("en", "ja", "zh")  # d has none
    assert story.regions == ("CN", "KP", "TW")  # two reports each
    assert story.entities == ("Xi", "abe", "Ab")
    with store._write() as conn:  # what the linker's side computes from the same members
        aggregate(conn, [made[-1]])
    assert store.get_story(made[-1]) == story


def test_story_ids_are_never_given_again(store: Store) -> None:
    (a,) = save(store, item("w", "a", 0))
    first = store.save_links([NewLink(a, -1, 0, ())])[-1]
    store.prune(T0 + timedelta(days=1))
    (b,) = save(store, item("w", "b", 48))
    second = store.save_links([NewLink(b, -1, 0, ())])[-1]
    assert second > first


def test_items_stored_before_stories_never_get_one(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store(path) as store:
        (a,) = save(store, item("w", "a", 0))
    # Make the file as a monitor without stories left it, then open it again: m010 runs.
    with sqlite3.connect(path) as conn:
        for table in ("story_links", "story_merges", "story_pending", "stories"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP TRIGGER items_story_pending_ai")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm010_stories'")
    with Store(path) as store:
        assert store.pending_stories() == []
        assert store.item_stories([a]) == {}
        (b,) = save(store, item("w", "b", 1))
        assert [s.id for s in store.pending_stories()] == [b]


def test_find_stories_by_time_rule_and_region(store: Store) -> None:
    a, b = save(store, item("w", "a", 0, regions=("TW",)), item("w", "b", 10, regions=("KP",)))
    made = store.save_links([NewLink(a, -1, 0, ()), NewLink(b, -2, 0, ())])
    with store._write() as conn:
        conn.execute(
            "INSERT INTO matches (item_id, rule_id, score, hits, matched_at, history)"
            " VALUES (?, 'taiwan', 1, '[]', '2026-03-01', 0)",
            (a,),
        )
    assert [s.id for s in store.find_stories()] == [made[-2], made[-1]]  # latest first
    assert [s.id for s in store.find_stories(since=T0 + timedelta(hours=5))] == [made[-2]]
    assert [s.id for s in store.find_stories(rule_id="taiwan")] == [made[-1]]
    assert [s.id for s in store.find_stories(region="kp")] == [made[-2]]
    assert store.recent_reports([made[-1], made[-2]], T0 + timedelta(hours=5)) == {made[-2]: 1}
    assert [(sid, s.id) for sid, s in store.open_stories(T0 + timedelta(hours=5))] == [
        (made[-2], b)
    ]

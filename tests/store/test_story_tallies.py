"""Linking folds only the new reports into a story's aggregates (`story_tallies`, migration
m015, `storyrows.add_members`): whatever happens between batches, every story must read as
the full recompute in SQL (`schema.STORY_AGGREGATES`, the retention trigger's) makes it, on
SQLite and on PostgreSQL (`db_target`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.models import EntityTag, Item
from monitor.store import Store, schema_pg
from monitor.store.pg import is_pg
from monitor.store.schema import STORY_AGGREGATES
from monitor.store.stories import NewLink, _json_list
from tests.store.test_stories import T0, item, save, tag


@pytest.fixture
def store(db_target: str | Path) -> Iterator[Store]:
    with Store(db_target) as opened:
        yield opened


_LISTS = ("outlets", "languages", "regions", "entities")  # JSON: SQL writes no spaces


def _decoded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: json.loads(v) if k in _LISTS else v for k, v in row.items()} for row in rows]


def stories(store: Store) -> list[dict[str, Any]]:
    return store._rows("SELECT * FROM stories ORDER BY id")


def recomputed(store: Store) -> list[dict[str, Any]]:
    """The stories as the retention trigger's SQL computes them from all their members (in a
    transaction rolled back: the store is left as it was)."""

    class Undo(Exception):
        pass

    ids = [row["id"] for row in stories(store)]
    out: list[dict[str, Any]] = []
    with pytest.raises(Undo), store._write() as conn:
        for sid in ids:
            if is_pg(conn):
                conn.raw.execute(re.sub(r"\bsid\b", str(int(sid)), schema_pg._AGGREGATES))
            else:
                conn.execute(STORY_AGGREGATES, {"story": sid})
        cursor = conn.execute("SELECT * FROM stories ORDER BY id")
        names = [d[0] for d in cursor.description]
        out = _decoded([dict(zip(names, row, strict=True)) for row in cursor.fetchall()])
        raise Undo
    return out


def assert_as_recomputed(store: Store) -> None:
    now = _decoded(stories(store))
    assert now and now == recomputed(store)


def tallies(store: Store) -> set[int]:
    return {r["story_id"] for r in store._rows("SELECT story_id FROM story_tallies")}


def test_batches_edits_moves_and_retention_leave_what_a_full_recompute_gives(
    store: Store,
) -> None:
    twice = (tag("Xi"), EntityTag("Xi", "person", "summary", 0, 2))  # one report: counts once
    a, b, c = save(
        store,
        item("wire", "a", 5, regions=("TW", "CN"), entities=twice),
        item("tokyo", "b", 6, lang="ja", regions=("TW",), entities=(tag("abe"),)),
        item("seoul", "c", 7, lang="ko", regions=("KP",)),
    )
    made = store.save_links([NewLink(a, -1, 0, ()), NewLink(b, -1, 0.6, ()), NewLink(c, -2, 0, ())])
    big, small = made[-1], made[-2]
    assert tallies(store) == {big, small}
    assert_as_recomputed(store)

    # A later batch brings reports OLDER than the story's first: its start, headline and the
    # order of its outlets and languages change; a tie in time is broken by name.
    d, e, f, g = save(
        store,
        item("agency", "d", 1, lang=None, regions=("KP", "KP"), entities=(tag("abe"),)),
        item("tokyo", "e", 2, lang="ja", entities=(tag("abe"), tag("Xi"))),
        item("Bbc", "f", 1, lang="zh", regions=("CN",)),
        item("seoul", "g", 9, lang="ko", regions=("KP",)),
    )
    links = [NewLink(i, big, 0.7, ("entity abe",)) for i in (d, e, f)]
    store.save_links([*links, NewLink(g, small, 0.8, ())])
    row = store.get_story(big)
    assert row is not None and row.headline_item == min(d, f)
    assert row.first_seen == T0 + timedelta(hours=1)
    assert row.outlets == ("Bbc", "agency", "tokyo", "wire")
    assert_as_recomputed(store)

    # A hand move recomputes in full; linking goes on from there.
    old, alone = store.split_item(e)
    assert old == big
    store.merge_stories(big, small)
    assert tallies(store) == {big, alone}  # the merged story's is gone with it
    (h,) = save(store, item("wire", "h", 0, regions=("TW",), entities=(tag("Xi"),)))
    store.save_links([NewLink(h, small, 0.9, ())])  # a linker loaded before the merge
    assert store.item_stories([h]) == {h: big}
    assert_as_recomputed(store)

    # An edited report's tags: its story's tally goes, the next link recomputes in full.
    edited = item("tokyo", "b", 6, lang="ja", regions=("JP",), entities=(), content_hash="b2")
    save(store, edited)
    assert big not in tallies(store)
    (i,) = save(store, item("tokyo", "i", 8, lang="ja", regions=("JP",)))
    store.save_links([NewLink(i, big, 0.5, ())])
    assert big in tallies(store)
    row = store.get_story(big)
    assert row is not None and row.regions[0] in ("KP", "TW") and "JP" in row.regions
    assert_as_recomputed(store)

    # Retention takes reports away (the trigger recomputes, and drops the tally); later
    # links are folded into what is left.
    assert store.prune(T0 + timedelta(hours=1, minutes=30)) == 3  # d, f, h
    assert big not in tallies(store)
    (j,) = save(store, item("zeit", "j", 3, lang="de", regions=("CN",)))
    store.save_links([NewLink(j, big, 0.5, ())])
    (k,) = save(store, item("zeit", "k", 4, lang="de", regions=("CN",)))
    store.save_links([NewLink(k, big, 0.5, ()), NewLink(k, alone, 0.5, ())])  # linked once
    assert_as_recomputed(store)


def test_a_story_linked_before_tallies_is_recomputed_then_folded(store: Store) -> None:
    a, b = save(store, item("wire", "a", 1, regions=("TW",)), item("bbc", "b", 2))
    made = store.save_links([NewLink(a, -1, 0, ()), NewLink(b, -1, 0, ())])
    with store._write() as conn:  # as a database migrated from before m015 has it
        conn.execute("DELETE FROM story_tallies")
    c, d = save(store, item("nhk", "c", 0, lang="ja"), item("wire", "d", 3, regions=("KP",)))
    store.save_links([NewLink(c, made[-1], 0.5, ())])
    store.save_links([NewLink(d, made[-1], 0.5, ())])
    row = store.get_story(made[-1])
    assert row is not None and (row.reports, row.outlets) == (4, ("nhk", "wire", "bbc"))
    assert_as_recomputed(store)


def test_pending_reports_read_as_the_stored_items(store: Store) -> None:
    tags = (tag("Xi"), EntityTag("taiwan", "place", "summary", 4, 10))
    ids = save(
        store,
        item("wire", "a", 1, regions=("TW", "CN"), entities=tags, summary="over taiwan"),
        item("nhk", "b", 2, lang=None),
    )
    full = {s.id: s.item for s in store.get_items(ids)}
    pending = store.pending_stories()
    assert [s.id for s in pending] == ids
    for s in pending:
        assert s.item == Item(**{**vars(full[s.id]), "html": "", "author": None})
        assert s.item.entities == full[s.id].entities and hash(s.item.entities[:1])


def test_a_why_is_the_json_of_its_phrases() -> None:
    for why in [(), ("entity xi-jinping",), ('quote " and \\', "北朝鮮", "\u2028\x00\n")]:
        assert _json_list(why) == json.dumps(list(why), ensure_ascii=False)


def test_the_story_token_counts_links_and_hand_moves(store: Store) -> None:
    assert store.story_token() == (0, 0, None)
    a, b, c = save(store, item("w", "a", 0), item("t", "b", 1), item("w", "c", 2))
    made = store.save_links([NewLink(i, -1, 0, ()) for i in (a, b, c)])
    assert store.story_token() == (3, 0, None)
    store.split_item(b)
    (moved,) = store._rows("SELECT linked_at FROM story_links WHERE item_id = ?", (b,))
    assert store.story_token() == (3, 1, moved["linked_at"])
    assert store.prune(T0 + timedelta(hours=1, minutes=30)) == 2  # a and b
    assert store.story_token() == (1, 0, None)
    assert store.item_stories([c]) == {c: made[-1]}

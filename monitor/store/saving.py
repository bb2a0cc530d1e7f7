"""The write path of a poll: one feed's items, their matches and its state, on a connection.

`save_feed` does the work of `Store.save_items` inside a transaction the caller holds, so the
`Store` can put one feed in a transaction of its own (`save_items`) or many feeds in one
(`save_batch`, each behind a savepoint). FTS5 writes a new index segment at every commit and
merges them later, and each commit costs a WAL append and a lock round: batches save ~10% of
the CPU of storing a cold poll, and the writer's thread calls once per batch, not per feed.
Most of what remains is SQLite's own (the rows, their indexes and triggers, the full-text
index); the Python part (`prepare`) can run in the parse workers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.match.rule import Match
from monitor.match.textnorm import search_text, spaced
from monitor.models import FeedState, Item, StoreResult
from monitor.store.pg import Conn, is_pg
from monitor.store.pgtext import tsvector
from monitor.store.rows import (
    _EDITABLE,
    _INDEX_ITEM,
    _INDEX_ITEM_PG,
    _INSERT_ITEM,
    _PUT_STATE,
    _STATE_COLUMNS,
    _UPDATE_ITEM,
    _UPSERT_MATCH,
    _item_row,
    _row,
    _terms_json,
    _ts,
)
from monitor.store.schema import HANGUL_CHARS

# Tags an item's regions and matches the rules: called for new and edited items only, inside
# the transaction that stores them (see ruleset.RuleSet.enrich).
# A match may come as its row (`match_row`): made in a parse worker, it crosses to the writer
# as three values instead of objects (unpickling Match and Hit objects cost the writer ~2 CPU-s
# a cold poll of 1,000 feeds with the default rules).
MatchRow = tuple[str, float, str]  # rule id, score, its terms that hit as JSON (`_terms_json`)
Enrich = Callable[[Item], tuple[Item, Sequence[Match | MatchRow]]]


def match_row(match: Match) -> MatchRow:
    return match.rule_id, match.score, _terms_json(match)


# An item's row and its full-text columns, worked out ahead (`prepare`): in a parse worker,
# they cost the writer nothing (~50 us an item, a third of storing it).
Prepared = tuple[tuple[object, ...], str, str]


def prepare(item: Item, folded: tuple[str, str] | None = None) -> Prepared:
    """With `folded`, the item's title and summary folded already (`textnorm.fold`)."""
    if folded is None:
        return _item_row(item), search_text(item.title), search_text(item.summary)
    return _item_row(item), spaced(folded[0]), spaced(folded[1])


@dataclass(frozen=True)
class FeedSave:
    """What one poll of one feed writes: the arguments of `Store.save_items`. With no items
    (the feed was unchanged, or failed) only the state is written. `prepared`, if given, is
    `prepare` of each of `items`, in order; it is used for an item that `enrich` returns
    unchanged (the same object), and worked out here for any other. `reads`, if given, is
    what story linking read of each item's text (`profile.packed_read`), in order: a new
    item's waits beside it in `story_pending` until it is linked (kept in the database, it
    costs the storing process no memory, and serves whichever process links it)."""

    feed_id: str
    items: Sequence[Item]
    state: FeedState
    enrich: Enrich | None = None
    history_before: datetime | None = None
    prepared: Sequence[Prepared | None] | None = None  # None: an item a worker left bare
    reads: Sequence[str | None] | None = None

    def check(self) -> None:
        if any(i.feed_id != self.feed_id for i in self.items) or (
            self.state.feed_id != self.feed_id
        ):
            raise ValueError(f"save_items({self.feed_id!r}): items and state must be of that feed")


_NEXT_ID = "SELECT coalesce(max(id), 0) + 1 FROM items"
# The history matches of some items; `_put_matches` keeps those of the pairs it wrote (one
# statement for both backends: SQLite's JSON pairs would need json_extract on one side and
# `->>` casts on the other).
_HISTORY_OF = """SELECT item_id, rule_id FROM matches WHERE history = 1
    AND item_id IN (SELECT value FROM json_each(?))"""


def put_state(conn: Conn, state: FeedState) -> None:
    conn.execute(_PUT_STATE, _row(state, _STATE_COLUMNS))


def save_feed(conn: Conn, save: FeedSave) -> StoreResult:
    """Store one feed's poll on `conn`, inside the caller's transaction (see `save_items`)."""
    save.check()
    if not save.items:
        put_state(conn, save.state)
        return StoreResult()
    batch: dict[str, Item] = {}
    for item in save.items:
        batch.setdefault(item.guid, item)
    known = _known(conn, save.feed_id, list(batch))
    new = [i for g, i in batch.items() if g not in known]
    changed = [
        (known[g][0], i) for g, i in batch.items() if g in known and known[g][1] != i.content_hash
    ]
    found: list[Sequence[Match | MatchRow]] = []
    if save.enrich is not None:
        new, found_new = _enriched(save.enrich, new)
        edited, found_changed = _enriched(save.enrich, [i for _, i in changed])
        changed = [(id_, i) for (id_, _), i in zip(changed, edited, strict=True)]
        found = found_new + found_changed
    ready = _Ready(save)
    _update(conn, changed)  # first: it takes their old text out of the index
    inserted = _insert(conn, new, ready)
    _put_reads(conn, inserted, ready)
    stored = [*inserted, *changed]
    _index(conn, stored, ready)
    matched, history = _put_matches(conn, stored, found, save.history_before)
    put_state(conn, save.state)
    unchanged = len(save.items) - len(new) - len(changed)
    return StoreResult(
        new=len(new), updated=len(changed), unchanged=unchanged, matches=matched, history=history
    )


def _enriched(
    enrich: Enrich, items: Sequence[Item]
) -> tuple[list[Item], list[Sequence[Match | MatchRow]]]:
    pairs = [enrich(item) for item in items]
    return [item for item, _ in pairs], [matches for _, matches in pairs]


def _is_old(item: Item, history_before: datetime | None) -> bool:
    return history_before is not None and item.published < history_before


def _put_matches(
    conn: Conn,
    stored: Sequence[tuple[int, Item]],
    found: Sequence[Sequence[Match | MatchRow]],
    history_before: datetime | None,
) -> tuple[int, int]:
    """Record matches (a rule matching an edited item again keeps its first time and its
    history flag); return how many, and how many of them are history."""
    now = _ts(datetime.now(UTC))
    rows = [
        (
            id_,
            *(m if isinstance(m, tuple) else match_row(m)),
            now,
            int(_is_old(item, history_before)),
        )
        for (id_, item), matches in zip(stored, found, strict=False)
        for m in matches
    ]
    if not rows:
        return 0, 0
    conn.executemany(_UPSERT_MATCH, rows)
    # Counted from the table: an edited item's match keeps the flag it had.
    ids = json.dumps(sorted({row[0] for row in rows}))
    old = set(map(tuple, conn.execute(_HISTORY_OF, (ids,)).fetchall()))
    return len(rows), sum((row[0], row[1]) in old for row in rows)


def _known(conn: Conn, feed_id: str, guids: list[str]) -> dict[str, tuple[int, str]]:
    """Id and content hash of those of `guids` the feed already has, by guid."""
    rows = conn.execute(
        "SELECT guid, id, content_hash FROM items WHERE feed_id = ?"
        " AND guid IN (SELECT value FROM json_each(?))",
        (feed_id, json.dumps(guids)),
    )
    return {guid: (id_, content_hash) for guid, id_, content_hash in rows}


class _Ready:
    """The prepared rows and the reads of a save's items, by item (identity: see FeedSave)."""

    def __init__(self, save: FeedSave) -> None:
        items = save.items
        prepared = save.prepared if save.prepared is not None else [None] * len(items)
        reads = save.reads if save.reads is not None else [None] * len(items)
        rows = zip(items, prepared, reads, strict=True)
        self._by_item = {id(item): (item, ready, read) for item, ready, read in rows}

    def _found(self, item: Item) -> tuple[Prepared | None, str | None]:
        found = self._by_item.get(id(item))
        return (None, None) if found is None or found[0] is not item else found[1:]

    def __call__(self, item: Item) -> Prepared:
        return self._found(item)[0] or prepare(item)

    def read(self, item: Item) -> str | None:
        return self._found(item)[1]


def _insert(conn: Conn, items: Sequence[Item], ready: _Ready) -> list[tuple[int, Item]]:
    """Insert with ids chosen here, as SQLite would (the largest one + 1: the write lock is
    ours), so that one `executemany` does all the rows and still tells the index their ids.
    Their rows in item_regions, item_entities and item_hangul are written here too, from
    the item (an edit's triggers rewrite them from the row: the two always agree)."""
    if not items:
        return []
    (first,) = conn.execute(_NEXT_ID).fetchone()
    stored = list(zip(range(first, first + len(items)), items, strict=True))
    conn.executemany(_INSERT_ITEM, [(id_, *ready(i)[0]) for id_, i in stored])
    _put_tags(conn, stored)
    return stored


def _put_tags(conn: Conn, stored: Sequence[tuple[int, Item]]) -> None:
    regions = [(id_, code) for id_, i in stored for code in dict.fromkeys(i.regions)]
    entities = [
        (id_, t.id, t.kind, t.field, t.start, t.end) for id_, i in stored for t in i.entities
    ]
    korean = [(id_,) for id_, i in stored if _has_hangul(i.title) or _has_hangul(i.summary)]
    for sql, rows in ((_PUT_REGION, regions), (_PUT_ENTITY, entities), (_PUT_HANGUL, korean)):
        if rows:
            conn.executemany(sql, rows)


_PUT_REGION = "INSERT INTO item_regions (item_id, code) VALUES (?, ?)"
# One entity named twice at one place (two aliases) is one row, as the triggers keep it.
_PUT_ENTITY = """INSERT INTO item_entities (item_id, entity_id, kind, field, start, "end")
    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""
_PUT_HANGUL = "INSERT INTO item_hangul (item_id) VALUES (?)"


_HANGUL = re.compile(f"[{HANGUL_CHARS}]")


def _has_hangul(text: str) -> bool:
    """What the edit trigger's test (`schema.HANGUL_GLOB`) says of `text`."""
    return not text.isascii() and _HANGUL.search(text) is not None


def _put_reads(conn: Conn, items: Sequence[tuple[int, Item]], ready: _Ready) -> None:
    """Keep each new item's read beside it on the queue for linking (its trigger's row)."""
    rows = [(read, id_) for id_, item in items if (read := ready.read(item)) is not None]
    if rows:
        conn.executemany("UPDATE story_pending SET read = ? WHERE item_id = ?", rows)


def _update(conn: Conn, items: Sequence[tuple[int, Item]]) -> None:
    if not items:
        return
    now = _ts(datetime.now(UTC))
    conn.executemany(_UPDATE_ITEM, [(*_row(i, _EDITABLE), now, id_) for id_, i in items])
    conn.executemany("DELETE FROM items_fts WHERE rowid = ?", [(id_,) for id_, _ in items])


def _index(conn: Conn, items: Sequence[tuple[int, Item]], ready: _Ready) -> None:
    rows = [(id_, *ready(i)[1:]) for id_, i in items]
    if is_pg(conn):
        # The tsvector of the same folded text FTS5 is given (`pgtext`): 30-70 us an item.
        conn.executemany(_INDEX_ITEM_PG, [(*row, tsvector(*row[1:])) for row in rows])
        return
    conn.executemany(_INDEX_ITEM, rows)

"""The store stage's `Store`: the one class that reads and writes the monitor database.

Its helpers live beside it: `rows` (values and statements in and out of SQL), `filters`
(the WHERE clause of a search), `errorhints` (what to tell the user when the file fails).

One SQLite file in WAL mode holds what monitor remembers: feeds' HTTP cache keys and health
(`feeds`), the items themselves (`items`, deduplicated per feed by guid), the regions each item
is tagged with (`item_regions`) and a full-text index over title and summary (`items_fts`).

Why it is built this way:
- WAL lets the service write while CLI commands read; a busy timeout makes a second writer
  wait its turn instead of failing at once. Writes start with `BEGIN IMMEDIATE`: a deferred
  transaction that reads first and writes later cannot wait for the lock when another writer
  got in between (SQLite reports SQLITE_BUSY at once), an immediate one can.
- `synchronous=NORMAL` is safe with WAL (no corruption; a power cut can only lose the last
  commits, which the next poll fetches again) and saves an fsync per poll.
- The full-text index is FTS5 with the `unicode61` word tokenizer over `textnorm.search_text`
  of title and summary: folded as rule terms are (`臺灣` meets `台湾`), with every Han/kana
  character spaced apart so that it is a token of its own. A Chinese or Japanese term becomes
  a phrase of characters, which is substring search without a word segmenter; Latin terms match
  whole words; Hangul terms match as prefixes (particles follow the noun: `북한의`). Trigrams
  needed no transformation, but their index cost ~10x more to write: most of a cold poll.
- The schema is built by named migrations, applied in order and never edited once released:
  a change is a new migration appended at the end.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database

from monitor.errors import StoreError
from monitor.match.rule import Match
from monitor.match.textnorm import search_text
from monitor.models import FeedState, Item, StoredItem, StoreResult
from monitor.store.errorhints import _hint, _is_environmental
from monitor.store.filters import search_plan
from monitor.store.rows import (
    _EDITABLE,
    _INDEX_ITEM,
    _INSERT_ITEM,
    _ITEM_COLUMNS,
    _PUT_STATE,
    _STATE_COLUMNS,
    _UPDATE_ITEM,
    _UPSERT_MATCH,
    _hits_json,
    _new_id,
    _row,
    _state,
    _stored,
    _ts,
)
from monitor.store.schema import MIGRATION_NAMES, MIGRATIONS, run_sql

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another one before giving up

# Tags an item's regions and matches the rules: called for new and edited items only, inside
# the transaction that stores them (see ruleset.RuleSet.enrich).
Enrich = Callable[[Item], tuple[Item, Sequence[Match]]]


def _enriched(enrich: Enrich, items: Sequence[Item]) -> tuple[list[Item], list[Sequence[Match]]]:
    pairs = [enrich(item) for item in items]
    return [item for item, _ in pairs], [matches for _, matches in pairs]


_COUNT_HISTORY = """SELECT count(*) FROM json_each(?) AS pair JOIN matches
    ON matches.item_id = json_extract(pair.value, '$[0]')
    AND matches.rule_id = json_extract(pair.value, '$[1]') WHERE matches.history = 1"""


def _is_old(item: Item, history_before: datetime | None) -> bool:
    return history_before is not None and item.published < history_before


class Store:
    """The monitor database. One connection, shared safely by the threads of one process."""

    def __init__(self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        with self._guard("cannot open the database"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False)
            self._db = Database(conn, execute_plugins=False)
        with self._guard("cannot prepare the database"):
            self._configure(busy_timeout)
            self._migrate()

    def _configure(self, busy_timeout: float) -> None:
        # Turning a new file to WAL needs an exclusive lock, for which SQLite does not wait
        # (no busy handler): when several processes open a new file at once, the others
        # retry until the busy timeout, as they would wait for any other lock.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._db.enable_wal()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        run_sql(self._db, "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        applied = MIGRATIONS.applied(self._db)
        unknown = [m.name for m in applied if m.name not in MIGRATION_NAMES]
        if unknown:
            raise StoreError(
                f"{self.path} was written by a newer monitor (migration {unknown[0]})",
                hint="upgrade monitor, or point --db (or MONITOR_DB) at another file",
            )
        if MIGRATIONS.pending(self._db):
            # Under the write lock, so two processes opening a new file do not both migrate;
            # apply() checks again what is pending once it holds the lock.
            with self._write():
                MIGRATIONS.apply(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            if not _is_environmental(exc):
                raise
            raise StoreError(f"{action} {self.path}: {exc}", hint=_hint(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (see the module docstring)."""
        with self._lock:
            conn = self._db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, self._guard("cannot read"):
            cursor = self._db.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # --- feeds' state & health -------------------------------------------------------------

    def get_state(self, feed_id: str) -> FeedState | None:
        rows = self._rows("SELECT * FROM feeds WHERE feed_id = ?", (feed_id,))
        return _state(rows[0]) if rows else None

    def states(self) -> dict[str, FeedState]:
        return {r["feed_id"]: _state(r) for r in self._rows("SELECT * FROM feeds")}

    def save_state(self, state: FeedState) -> None:
        with self._guard("cannot write to"), self._write() as conn:
            self._put_state(conn, state)

    @staticmethod
    def _put_state(conn: sqlite3.Connection, state: FeedState) -> None:
        conn.execute(_PUT_STATE, _row(state, _STATE_COLUMNS))

    def forget_feed_state(self, feed_id: str) -> None:
        """Drop a feed's cache keys and health (its items stay), e.g. when it is re-added."""
        with self._guard("cannot write to"), self._write() as conn:
            conn.execute("DELETE FROM feeds WHERE feed_id = ?", (feed_id,))

    # --- items ------------------------------------------------------------------------------

    def save_items(
        self,
        feed_id: str,
        items: Sequence[Item],
        state: FeedState,
        enrich: Enrich | None = None,
        history_before: datetime | None = None,
    ) -> StoreResult:
        """Store one poll's items, their rule matches and the feed's new state in one transaction.

        Items are deduplicated per feed by guid: an unknown guid is inserted, a known one with
        another content hash is updated in place (id and first_seen kept), a known one with the
        same hash is left alone. A guid repeated within `items` counts once, first one wins.
        `enrich` runs on the new and updated items only, so an unchanged item is never matched
        again (editing rules does not re-alert on old items). The matches of an item published
        before `history_before` are history: stored and searchable, never delivered.
        """
        if any(i.feed_id != feed_id for i in items) or state.feed_id != feed_id:
            raise ValueError(f"save_items({feed_id!r}): items and state must be of that feed")
        batch: dict[str, Item] = {}
        for item in items:
            batch.setdefault(item.guid, item)
        with self._guard("cannot write to"), self._write() as conn:
            known = self._known(conn, feed_id, list(batch))
            new = [i for g, i in batch.items() if g not in known]
            changed = [
                (known[g][0], i)
                for g, i in batch.items()
                if g in known and known[g][1] != i.content_hash
            ]
            found: list[Sequence[Match]] = []
            if enrich is not None:
                new, found_new = _enriched(enrich, new)
                edited, found_changed = _enriched(enrich, [i for _, i in changed])
                changed = [(id_, i) for (id_, _), i in zip(changed, edited, strict=True)]
                found = found_new + found_changed
            self._update(conn, changed)  # first: it takes their old text out of the index
            stored = [*self._insert(conn, new), *changed]
            self._index(conn, stored)
            matched, history = self._put_matches(conn, stored, found, history_before)
            self._put_state(conn, state)
        unchanged = len(items) - len(new) - len(changed)
        return StoreResult(
            new=len(new),
            updated=len(changed),
            unchanged=unchanged,
            matches=matched,
            history=history,
        )

    @staticmethod
    def _put_matches(
        conn: sqlite3.Connection,
        stored: Sequence[tuple[int, Item]],
        found: Sequence[Sequence[Match]],
        history_before: datetime | None,
    ) -> tuple[int, int]:
        """Record matches (a rule matching an edited item again keeps its first time and its
        history flag); return how many, and how many of them are history."""
        now = _ts(datetime.now(UTC))
        rows = [
            (id_, m.rule_id, m.score, _hits_json(m), now, int(_is_old(item, history_before)))
            for (id_, item), matches in zip(stored, found, strict=False)
            for m in matches
        ]
        conn.executemany(_UPSERT_MATCH, rows)
        # Counted from the table: an edited item's match keeps the flag it had.
        pairs = json.dumps([[row[0], row[1]] for row in rows])
        (history,) = conn.execute(_COUNT_HISTORY, (pairs,)).fetchone()
        return len(rows), int(history)

    @staticmethod
    def _known(
        conn: sqlite3.Connection, feed_id: str, guids: list[str]
    ) -> dict[str, tuple[int, str]]:
        """Id and content hash of those of `guids` the feed already has, by guid."""
        rows = conn.execute(
            "SELECT guid, id, content_hash FROM items WHERE feed_id = ?"
            " AND guid IN (SELECT value FROM json_each(?))",
            (feed_id, json.dumps(guids)),
        )
        return {guid: (id_, content_hash) for guid, id_, content_hash in rows}

    @staticmethod
    def _insert(conn: sqlite3.Connection, items: Sequence[Item]) -> list[tuple[int, Item]]:
        # One statement per row (not executemany) to learn each new id for the index.
        return [(_new_id(conn.execute(_INSERT_ITEM, _row(i, _ITEM_COLUMNS))), i) for i in items]

    @staticmethod
    def _update(conn: sqlite3.Connection, items: Sequence[tuple[int, Item]]) -> None:
        now = _ts(datetime.now(UTC))
        conn.executemany(_UPDATE_ITEM, [(*_row(i, _EDITABLE), now, id_) for id_, i in items])
        conn.executemany("DELETE FROM items_fts WHERE rowid = ?", [(id_,) for id_, _ in items])

    @staticmethod
    def _index(conn: sqlite3.Connection, items: Sequence[tuple[int, Item]]) -> None:
        rows = [(id_, search_text(i.title), search_text(i.summary)) for id_, i in items]
        conn.executemany(_INDEX_ITEM, rows)

    def get_items(self, ids: Sequence[int]) -> list[StoredItem]:
        """The items with these ids, in the order asked; unknown ids are left out."""
        rows = self._rows(
            "SELECT * FROM items WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        by_id = {r["id"]: _stored(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def search(
        self,
        query: str | None,
        *,
        since: datetime | None = None,
        feed_id: str | None = None,
        region: str | None = None,
        rule_id: str | None = None,
        limit: int = 50,
        tag_feeds: Mapping[str, Sequence[str]] | None = None,
        entity: str | None = None,
    ) -> list[StoredItem]:
        """Items matching `query` in title or summary, newest (published) first.

        The query language is that of alert rules (`match.query`): words ANDed, `"a phrase"`,
        `drill*`, `OR`, `NOT`, parentheses, `NEAR/n`, `title:`, `region:`, `feed:`, `lang:`,
        and `tag:` with `tag_feeds` (tag -> feed ids). Terms are folded as rules fold them;
        Latin words match whole words (`UN` does not find `sun`), Chinese and Japanese terms
        anywhere (`台湾` in `台湾海峡`), Korean ones at the start of a word (`북한의`). A query
        that does not parse raises SearchQueryError; nothing in any input is SQL or FTS5 syntax.
        `since` keeps items published at or after it, `region` items tagged with that code (any
        case), `rule_id` items that rule matched, `entity` items naming that entity (an id;
        `entity:ID` and `entity:type:KIND` in the query do the same).
        """
        if limit <= 0:
            return []
        plan = search_plan(query, since, feed_id, region, rule_id, tag_feeds, entity)
        row_by_row = plan.fts is not None and self._common(plan.fts, limit)
        where, values = plan.where(row_by_row=row_by_row)
        sql = f"SELECT * FROM items WHERE {where} ORDER BY published DESC, id DESC LIMIT ?"
        return [_stored(r) for r in self._rows(sql, [*values, limit])]

    def _common(self, fts: str, limit: int) -> bool:
        """Whether the text matches so many items that walking them newest first and testing
        each (stopping at `limit`) beats fetching every match and sorting.

        Fetching and sorting costs ~3 us per match (measured, 200,000 items); the walk costs
        ~8 us per item it passes, and passes about limit x items / matches of them before it
        has `limit` results. So the walk wins above about sqrt(3 x limit x items) matches
        (~3,500 for 20 results among 200,000 items: 2 ms instead of 500 ms for `the`).
        Counting stops there, so it costs little even for the commonest word.
        """
        items = self._rows("SELECT coalesce(max(id), 0) AS n FROM items")[0]["n"]
        enough = math.isqrt(3 * limit * int(items)) + 1
        found = self._rows(
            "SELECT count(*) AS n FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ? LIMIT ?)",
            (fts, enough),
        )[0]["n"]
        return int(found) >= enough

    def matched_rules(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """The rules each of these items matched (ids without matches are left out)."""
        rows = self._rows(
            "SELECT item_id, rule_id FROM matches WHERE item_id IN (SELECT value FROM json_each(?))"
            " ORDER BY rule_id",
            (json.dumps(list(ids)),),
        )
        out: dict[int, list[str]] = {}
        for row in rows:
            out.setdefault(row["item_id"], []).append(row["rule_id"])
        return out

    def match_counts(self) -> dict[str, int]:
        """Items matched per rule id."""
        rows = self._rows("SELECT rule_id, count(*) AS n FROM matches GROUP BY rule_id")
        return {r["rule_id"]: int(r["n"]) for r in rows}

    def region_counts(self) -> dict[str, int]:
        """Items tagged per region code."""
        rows = self._rows("SELECT code, count(*) AS n FROM item_regions GROUP BY code")
        return {r["code"]: int(r["n"]) for r in rows}

    def count_items(self, feed_id: str | None = None) -> int:
        if feed_id is None:
            rows = self._rows("SELECT count(*) AS n FROM items")
        else:
            rows = self._rows("SELECT count(*) AS n FROM items WHERE feed_id = ?", (feed_id,))
        return int(rows[0]["n"])

    def prune(self, older_than: datetime) -> int:
        """Retention: delete the items first seen before `older_than`; return how many."""
        with self._guard("cannot write to"), self._write() as conn:
            cursor = conn.execute("DELETE FROM items WHERE first_seen < ?", (_ts(older_than),))
            return cursor.rowcount

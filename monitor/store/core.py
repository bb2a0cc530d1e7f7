"""The store stage's `Store`: the one class that reads and writes the monitor database.

Its helpers live beside it: `rows` (values and statements in and out of SQL), `filters`
(the WHERE clause of a search), `errorhints` (what to tell the user when the file fails).

One SQLite file in WAL mode holds what monitor remembers: feeds' HTTP cache keys and health
(`feeds`), the items themselves (`items`, deduplicated per feed by guid), the regions each item
is tagged with (`item_regions`) and a full-text index over title and summary (`items_fts`).
Given a `postgresql://` URL instead, the same tables live in a PostgreSQL database (`pg`,
`schema_pg`) and every method answers the same: the statements are SQLite's where PostgreSQL
reads them too, spelled per backend beside each other where it does not, and the orders users
see are code point order on both (`rows._in_code_order`), whatever the server's collation.

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
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from monitor.errors import StoreError
from monitor.models import FeedState, Item, StoredItem, StoreResult
from monitor.store.errorhints import _hint, _is_environmental
from monitor.store.filters import search_plan
from monitor.store.pg import (
    CONNECT_TIMEOUT,
    WRITE_LOCK,
    Conn,
    PgDatabase,
    driver_errors,
    is_url,
    redacted,
)
from monitor.store.rows import SCHEDULES, FeedSchedule, _schedule, _state, _stored, _ts
from monitor.store.saving import Enrich, FeedSave, put_state, save_feed
from monitor.store.schema import MIGRATION_NAMES, MIGRATIONS, run_sql
from monitor.store.stories import StoryStore

if TYPE_CHECKING:
    import psycopg

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another one before giving up


def _rolled_back(conn: Conn, exc: Exception) -> Exception:
    conn.execute("ROLLBACK TO feed")
    return exc


class Store(StoryStore):
    """The monitor database. One connection, shared safely by the threads of one process."""

    def __init__(self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self._lock = threading.RLock()
        self._pg: PgDatabase | None = None
        # What opens this database again from another process, whatever its working
        # directory (a URL keeps its password here: never shown).
        self.target = str(path) if is_url(path) else str(Path(path).resolve())
        if is_url(path):
            # `path` stays the name users gave (without its password), for messages.
            self.path: Path | str = redacted(str(path))
            self._open_pg(str(path))
            return
        self.path = Path(path)
        with self._guard("cannot open the database"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False)
            self._db = Database(conn, execute_plugins=False)
        with self._guard("cannot prepare the database"):
            self._configure(busy_timeout)
            self._migrate()

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return "sqlite" if self._pg is None else "postgresql"

    def _open_pg(self, url: str) -> None:
        import psycopg  # here, not at the top: SQLite never loads it (see `driver_errors`)

        # Migrated over one plain connection first: a server that refuses it says why at once
        # (the pool would retry in the background and report only a timeout), and the pool
        # opens once the schema is there.
        with self._guard("cannot open the database"):
            first = psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT))
        with self._guard("cannot prepare the database"), first:
            self._migrate_pg(first)
        with self._guard("cannot open the database"):
            self._pg = PgDatabase(url)

    def _migrate_pg(self, raw: psycopg.Connection[Any]) -> None:
        from monitor.store.schema_pg import MIGRATIONS_PG, applied, migrate

        # Under the write lock: two processes opening a new database at once would both
        # create the migrations table, and one of them fail on PostgreSQL's catalog.
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            names = applied(raw)
        unknown = [n for n in names if n not in {m for m, _ in MIGRATIONS_PG}]
        if unknown:
            raise StoreError(
                f"{self.path} was written by a newer monitor (migration {unknown[0]})",
                hint="upgrade monitor, or point --db (or MONITOR_DB) at another database",
            )
        migrate(raw)

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
            if self._pg is not None:
                self._pg.close()
            else:
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
        except driver_errors("OperationalError", OSError, sqlite3.Error) as exc:
            if not _is_environmental(exc):
                raise
            # One line: libpq adds a second one ("Is the server running...") the hint covers.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"{action} {self.path}: {reason}", hint=_hint(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[Conn]:
        """One write transaction, taking the write lock up front (see the module docstring;
        on PostgreSQL, `pg.WRITE_LOCK`)."""
        if self._pg is not None:
            with self._pg.transaction() as pg:
                yield pg
            return
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
        if self._pg is not None:
            with self._guard("cannot read"):
                return self._pg.rows(sql, params)
        with self._lock, self._guard("cannot read"):
            cursor = self._db.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """`_rows` as tuples, for the reads of every new item (a dict a row costs ~2 us)."""
        with self._guard("cannot read"):
            if self._pg is not None:
                with self._pg.connection() as pg:
                    return list(pg.execute(sql, params).fetchall())
            with self._lock:
                return list(self._db.conn.execute(sql, params).fetchall())

    # --- feeds' state & health -------------------------------------------------------------

    def get_state(self, feed_id: str) -> FeedState | None:
        rows = self._rows("SELECT * FROM feeds WHERE feed_id = ?", (feed_id,))
        return _state(rows[0]) if rows else None

    def schedules(self) -> dict[str, FeedSchedule]:
        """Of every feed's state, what deciding whether it is due reads (a tenth of the time)."""
        return {r["feed_id"]: _schedule(r) for r in self._rows(SCHEDULES)}

    def states(self, feed_ids: Collection[str] | None = None) -> dict[str, FeedState]:
        """Every feed's state, or only these feeds' (those stored: a new feed has none)."""
        if feed_ids is None:
            return {r["feed_id"]: _state(r) for r in self._rows("SELECT * FROM feeds")}
        sql = "SELECT * FROM feeds WHERE feed_id IN (SELECT value FROM json_each(?))"
        return {r["feed_id"]: _state(r) for r in self._rows(sql, (json.dumps(list(feed_ids)),))}

    def save_state(self, state: FeedState) -> None:
        with self._guard("cannot write to"), self._write() as conn:
            put_state(conn, state)

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
        save = FeedSave(feed_id, items, state, enrich, history_before)
        save.check()
        with self._guard("cannot write to"), self._write() as conn:
            return save_feed(conn, save)

    def save_batch(self, saves: Sequence[FeedSave]) -> list[StoreResult | Exception]:
        """`save_items` for many feeds in one transaction, each feed behind a savepoint: a feed
        whose save fails (a bug, bad data) is rolled back alone and its exception returned in
        its place, the others are kept. A failure of the whole transaction (disk full) raises,
        and then nothing of the batch is stored."""
        results: list[StoreResult | Exception] = []
        with self._guard("cannot write to"), self._write() as conn:
            for save in saves:
                conn.execute("SAVEPOINT feed")
                try:
                    results.append(save_feed(conn, save))
                except driver_errors("Error", sqlite3.Error, OSError) as exc:
                    if _is_environmental(exc):
                        raise  # the file, not the feed: the whole batch fails
                    results.append(_rolled_back(conn, exc))
                except Exception as exc:
                    results.append(_rolled_back(conn, exc))
                conn.execute("RELEASE feed")
        return results

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
        story: int | None = None,
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
        `entity:ID` and `entity:type:KIND` in the query do the same), `story` the reports of that
        story.
        """
        if limit <= 0:
            return []
        pg = self._pg is not None
        plan = search_plan(query, since, feed_id, region, rule_id, tag_feeds, entity, story, pg=pg)
        # PostgreSQL's planner makes that choice itself, from the statistics of `doc`
        # (measured, 20,000 items: it walks `items_published` for a common word and reads
        # the GIN index for a rare one, 0.4-1.6 ms either way): counting first only costs.
        row_by_row = plan.fts is not None and not pg and self._common(plan.fts, limit)
        where, values = plan.where(row_by_row=row_by_row)
        sql = f"SELECT * FROM items WHERE {where} ORDER BY published DESC, id DESC LIMIT ?"
        return [_stored(r) for r in self._rows(sql, [*values, limit])]

    def _common(self, fts: str, limit: int) -> bool:
        """Whether the text matches so many items that walking them newest first and testing
        each (stopping at `limit`) beats fetching every match and sorting (SQLite's plan).

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
        rows = self._tuples(
            "SELECT item_id, rule_id FROM matches WHERE item_id IN (SELECT value FROM json_each(?))"
            " ORDER BY rule_id",
            (json.dumps(list(ids)),),
        )
        if self._pg is not None:
            rows.sort(key=lambda row: row[1])  # code point order (`rows._in_code_order`)
        out: dict[int, list[str]] = {}
        for item, rule in rows:
            out.setdefault(item, []).append(rule)
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

"""The store stage: the only module that speaks SQL.

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
- The full-text index uses the trigram tokenizer, so Chinese, Japanese and Korean text is
  searchable without word segmentation. Trigrams cannot match terms shorter than three
  characters (`台湾`), so those terms fall back to LIKE, ANDed with the indexed part.
- The schema is built by named migrations, applied in order and never edited once released:
  a change is a new migration appended at the end.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor.errors import StoreError
from monitor.models import FeedState, Item, StoredItem, StoreResult

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another one before giving up
TRIGRAM = 3  # the shortest term the trigram index can find

MIGRATIONS = Migrations("monitor")
_MIGRATION_NAMES: list[str] = []  # to recognise a database migrated by a newer monitor


def _migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    _MIGRATION_NAMES.append(fn.__name__)
    return MIGRATIONS()(fn)


def _run(db: Database, *statements: str) -> None:
    for sql in statements:
        db.execute(sql)


@_migration
def m001_feeds(db: Database) -> None:
    _run(
        db,
        """CREATE TABLE feeds (
            feed_id TEXT PRIMARY KEY, url TEXT NOT NULL, configured_url TEXT,
            etag TEXT, last_modified TEXT,
            body_hash TEXT, last_attempt TEXT, last_success TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_due TEXT,
            gone INTEGER NOT NULL DEFAULT 0)""",
    )


@_migration
def m002_items(db: Database) -> None:
    _run(
        db,
        """CREATE TABLE items (
            id INTEGER PRIMARY KEY, feed_id TEXT NOT NULL, guid TEXT NOT NULL, link TEXT,
            title TEXT NOT NULL, summary TEXT NOT NULL, html TEXT NOT NULL, author TEXT,
            lang TEXT, published TEXT NOT NULL, first_seen TEXT NOT NULL, updated TEXT,
            content_hash TEXT NOT NULL, regions TEXT NOT NULL DEFAULT '[]',
            UNIQUE (feed_id, guid))""",
        "CREATE INDEX items_published ON items (published)",
        "CREATE INDEX items_feed_published ON items (feed_id, published)",
        "CREATE INDEX items_first_seen ON items (first_seen)",
    )


@_migration
def m003_item_regions(db: Database) -> None:
    # Filled by triggers from items.regions, so the two can never disagree.
    _run(
        db,
        """CREATE TABLE item_regions (
            item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            code TEXT NOT NULL, PRIMARY KEY (item_id, code)) WITHOUT ROWID""",
        "CREATE INDEX item_regions_code ON item_regions (code, item_id)",
        """CREATE TRIGGER items_regions_ai AFTER INSERT ON items BEGIN
            INSERT INTO item_regions (item_id, code)
            SELECT DISTINCT new.id, value FROM json_each(new.regions);
        END""",
        """CREATE TRIGGER items_regions_au AFTER UPDATE OF regions ON items
        WHEN old.regions IS NOT new.regions BEGIN
            DELETE FROM item_regions WHERE item_id = old.id;
            INSERT INTO item_regions (item_id, code)
            SELECT DISTINCT new.id, value FROM json_each(new.regions);
        END""",
    )


@_migration
def m004_items_fts(db: Database) -> None:
    # External content: the index stores no second copy of the text; triggers keep it in sync
    # inside whatever transaction changes `items`.
    _run(
        db,
        """CREATE VIRTUAL TABLE items_fts USING fts5 (
            title, summary, content='items', content_rowid='id', tokenize='trigram')""",
        """CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, title, summary)
            VALUES (new.id, new.title, new.summary);
        END""",
        """CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, summary)
            VALUES ('delete', old.id, old.title, old.summary);
        END""",
        """CREATE TRIGGER items_fts_au AFTER UPDATE OF title, summary ON items
        WHEN old.title IS NOT new.title OR old.summary IS NOT new.summary BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, summary)
            VALUES ('delete', old.id, old.title, old.summary);
            INSERT INTO items_fts (rowid, title, summary)
            VALUES (new.id, new.title, new.summary);
        END""",
    )


# --- values in and out -------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    """An aware datetime as fixed-width ISO-8601 UTC text, so text order is time order."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes aware UTC datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _required_dt(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_STATE_COLUMNS = (
    "feed_id", "url", "configured_url", "etag", "last_modified", "body_hash", "last_attempt",
    "last_success", "consecutive_errors", "last_error", "next_due", "gone",
)  # fmt: skip
_PUT_STATE = "INSERT INTO feeds ({}) VALUES ({}) ON CONFLICT (feed_id) DO UPDATE SET {}".format(
    ", ".join(_STATE_COLUMNS),
    ", ".join("?" * len(_STATE_COLUMNS)),
    ", ".join(f"{c} = excluded.{c}" for c in _STATE_COLUMNS[1:]),
)


def _sql_value(value: object) -> object:
    if isinstance(value, datetime):
        return _ts(value)
    return int(value) if isinstance(value, bool) else value


def _state_row(state: FeedState) -> tuple[object, ...]:
    return tuple(_sql_value(getattr(state, column)) for column in _STATE_COLUMNS)


def _state(row: dict[str, Any]) -> FeedState:
    return FeedState(
        feed_id=row["feed_id"],
        url=row["url"],
        configured_url=row["configured_url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_attempt=_dt(row["last_attempt"]),
        last_success=_dt(row["last_success"]),
        consecutive_errors=row["consecutive_errors"],
        last_error=row["last_error"],
        next_due=_dt(row["next_due"]),
        gone=bool(row["gone"]),
    )


def _item_row(i: Item) -> tuple[Any, ...]:
    return (
        i.feed_id, i.guid, i.link, i.title, i.summary, i.html, i.author, i.lang,
        _ts(i.published), _ts(i.first_seen), i.content_hash, json.dumps(list(i.regions)),
    )  # fmt: skip


def _stored(row: dict[str, Any]) -> StoredItem:
    item = Item(
        feed_id=row["feed_id"],
        guid=row["guid"],
        link=row["link"],
        title=row["title"],
        summary=row["summary"],
        html=row["html"],
        author=row["author"],
        lang=row["lang"],
        published=_required_dt(row["published"]),
        first_seen=_required_dt(row["first_seen"]),
        content_hash=row["content_hash"],
        regions=tuple(json.loads(row["regions"])),
    )
    return StoredItem(id=row["id"], item=item, updated=_dt(row["updated"]))


# --- search syntax -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Filter:
    """A WHERE clause fragment and its parameters."""

    sql: str
    params: tuple[Any, ...] = ()


def _terms(query: str) -> list[str]:
    """Split a user query into terms: `"quoted phrases"` and whitespace-separated words.

    Never fails: an unclosed quote runs to the end, empty quotes are dropped.
    """
    terms: list[str] = []
    query = query.replace("\x00", " ")  # the FTS5 query parser stops at a NUL
    for n, chunk in enumerate(query.split('"')):
        if n % 2:  # inside quotes: one phrase, inner spaces kept (but not doubled ends)
            terms.append(chunk.strip())
        else:
            terms.extend(chunk.split())
    return [t for t in terms if t]


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_filters(query: str | None) -> list[_Filter]:
    """Long terms go to the FTS index as quoted strings (so no input is FTS syntax); short
    ones, which trigrams cannot find, are matched with LIKE on title or summary."""
    terms = _terms(query or "")
    long = [t for t in terms if len(t) >= TRIGRAM]
    filters = [
        _Filter(
            "(items.title LIKE ? ESCAPE '\\' OR items.summary LIKE ? ESCAPE '\\')",
            (_like(t), _like(t)),
        )
        for t in terms
        if len(t) < TRIGRAM
    ]
    if long:
        match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long)
        sql = "items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)"
        filters.insert(0, _Filter(sql, (match,)))
    return filters


# --- errors ------------------------------------------------------------------------------

_HINTS = (
    ("not a database", "it is not a monitor database: point --db (or MONITOR_DB) elsewhere"),
    ("malformed", "the file is damaged: restore a backup or move it away to start afresh"),
    ("locked", "another monitor process kept the database busy; try again"),
    ("full", "the disk is full: free some space or shorten the retention"),
    ("readonly", "this user may not write the file: check its permissions and its directory's"),
    ("unable to open", "check that the directory exists and that this user may write to it"),
    ("permission denied", "check that this user may create and write files there"),
)


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, hint in _HINTS:
        if needle in text:
            return hint
    return "check the path given by --db (or MONITOR_DB)"


def _is_environmental(exc: BaseException) -> bool:
    """Whether an error comes from the file or the system rather than from a bug here."""
    return isinstance(exc, OSError) or type(exc) in (
        sqlite3.OperationalError,
        sqlite3.DatabaseError,
    )


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
            self._configure()
            self._migrate()

    def _configure(self) -> None:
        self._db.enable_wal()
        _run(self._db, "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        applied = MIGRATIONS.applied(self._db)
        unknown = [m.name for m in applied if m.name not in _MIGRATION_NAMES]
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
        conn.execute(_PUT_STATE, _state_row(state))

    def forget_feed_state(self, feed_id: str) -> None:
        """Drop a feed's cache keys and health (its items stay), e.g. when it is re-added."""
        with self._guard("cannot write to"), self._write() as conn:
            conn.execute("DELETE FROM feeds WHERE feed_id = ?", (feed_id,))

    # --- items ------------------------------------------------------------------------------

    def save_items(self, feed_id: str, items: Sequence[Item], state: FeedState) -> StoreResult:
        """Store one poll's items and the feed's new state in one transaction.

        Items are deduplicated per feed by guid: an unknown guid is inserted, a known one with
        another content hash is updated in place (id and first_seen kept), a known one with the
        same hash is left alone. A guid repeated within `items` counts once, first one wins.
        """
        if any(i.feed_id != feed_id for i in items) or state.feed_id != feed_id:
            raise ValueError(f"save_items({feed_id!r}): items and state must be of that feed")
        batch: dict[str, Item] = {}
        for item in items:
            batch.setdefault(item.guid, item)
        with self._guard("cannot write to"), self._write() as conn:
            known = dict(
                conn.execute(
                    "SELECT guid, content_hash FROM items WHERE feed_id = ?"
                    " AND guid IN (SELECT value FROM json_each(?))",
                    (feed_id, json.dumps(list(batch))),
                ).fetchall()
            )
            new = [i for g, i in batch.items() if g not in known]
            changed = [i for g, i in batch.items() if g in known and known[g] != i.content_hash]
            self._insert(conn, new)
            self._update(conn, changed)
            self._put_state(conn, state)
        unchanged = len(items) - len(new) - len(changed)
        return StoreResult(new=len(new), updated=len(changed), unchanged=unchanged)

    @staticmethod
    def _insert(conn: sqlite3.Connection, items: Sequence[Item]) -> None:
        conn.executemany(
            "INSERT INTO items (feed_id, guid, link, title, summary, html, author, lang,"
            " published, first_seen, content_hash, regions)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_item_row(i) for i in items],
        )

    @staticmethod
    def _update(conn: sqlite3.Connection, items: Sequence[Item]) -> None:
        now = _ts(datetime.now(UTC))
        conn.executemany(
            "UPDATE items SET link = ?, title = ?, summary = ?, html = ?, author = ?,"
            " content_hash = ?, regions = ?, updated = ? WHERE feed_id = ? AND guid = ?",
            [
                (i.link, i.title, i.summary, i.html, i.author, i.content_hash,
                 json.dumps(list(i.regions)), now, i.feed_id, i.guid)
                for i in items
            ],
        )  # fmt: skip

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
        limit: int = 50,
    ) -> list[StoredItem]:
        """Items matching every term of `query`, newest (by published time) first.

        Syntax: words are ANDed, `"a phrase"` matches those words in that order, case is
        ignored, and every term matches as a substring of the title or summary. `since` keeps
        items published at or after it. Any input is safe: nothing in it is SQL or FTS syntax.
        """
        if limit <= 0:
            return []
        filters = _text_filters(query)
        if since is not None:
            filters.append(_Filter("items.published >= ?", (_ts(since),)))
        if feed_id is not None:
            filters.append(_Filter("items.feed_id = ?", (feed_id,)))
        where = " AND ".join(f.sql for f in filters) or "1"
        params = [p for f in filters for p in f.params]
        sql = f"SELECT * FROM items WHERE {where} ORDER BY published DESC, id DESC LIMIT ?"
        return [_stored(r) for r in self._rows(sql, [*params, limit])]

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

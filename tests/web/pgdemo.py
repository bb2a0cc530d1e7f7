"""The demo's SQLite database copied row for row into PostgreSQL, so the console's pages can be
read from both backends over the same data (the same ids, times and texts) and compared.

The PostgreSQL schema is made by `Store` (the real migrations); rows are then copied table by
table, parents before children. The tables its triggers fill from `items` (regions, entities,
Hangul, the stories' queue) are emptied and copied as SQLite has them, the full-text index is
written as the store writes it (`pgtext.tsvector` of the folded text FTS5 holds), and the
identity sequences are moved past the copied ids, as they would be had the store made them.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from monitor.store import Store

# Parents before children (foreign keys); tables not named here follow, by name.
ORDER = (
    "feeds", "items", "item_regions", "item_entities", "item_hangul", "matches", "routes",
    "digests", "deliveries", "left_out", "disabled_receivers", "stories", "story_links",
    "story_merges", "story_pending", "story_sent", "surges", "surge_deliveries",
)  # fmt: skip
FILLED_BY_TRIGGERS = ("item_regions", "item_entities", "item_hangul", "story_pending")
IDENTITIES = ("stories", "surges")
SKIPPED = ("items_fts", "monitor_migrations")


def copy_into_pg(source: Path, url: str) -> None:
    """Copy the SQLite database `source` into the new PostgreSQL database `url`."""
    Store(url).close()  # the schema, by the real migrations
    with closing(sqlite3.connect(source)) as lite, psycopg.connect(url) as pg:
        tables = _shared_tables(lite, pg)
        for table in tables:
            _copy_table(lite, pg, table)
            if table == "items":
                for filled in FILLED_BY_TRIGGERS:
                    pg.execute(f"DELETE FROM {filled}")
        _copy_fts(lite, pg)
        for table in IDENTITIES:
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )


def _shared_tables(lite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> list[str]:
    theirs = {r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    ours = {
        r[0]
        for r in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    shared = (theirs & ours) - set(SKIPPED)
    return [t for t in ORDER if t in shared] + sorted(shared - set(ORDER))


def _copy_table(lite: sqlite3.Connection, pg: psycopg.Connection[Any], table: str) -> None:
    types = dict(
        pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    )
    columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})") if r[1] in types]
    binary = [types[c] == "bytea" for c in columns]  # a BLOB SQLite may hold as text
    rows = [
        [
            v.encode() if blob and isinstance(v, str) else v
            for v, blob in zip(row, binary, strict=True)
        ]
        for row in lite.execute(f"SELECT {', '.join(columns)} FROM {table}")
    ]
    if rows:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        with pg.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _copy_fts(lite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> None:
    from monitor.store.pgtext import tsvector

    rows = [
        (rowid, title, summary, tsvector(title, summary))
        for rowid, title, summary in lite.execute("SELECT rowid, title, summary FROM items_fts")
    ]
    with pg.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO items_fts (rowid, title, summary, doc) VALUES (%s, %s, %s, %s::tsvector)",
            rows,
        )

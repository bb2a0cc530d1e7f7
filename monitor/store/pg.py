"""PostgreSQL behind the store's calls: a pool of psycopg connections that take the store's
SQL as SQLite reads it.

`monitor` stays SQLite-first: every statement in the store is written for SQLite, and most of
it is plain SQL that PostgreSQL runs unchanged. `translate` rewrites the few spellings that
differ everywhere, once per statement (cached):

- placeholders: `?` becomes `%s`, `:name` becomes `%(name)s`, a literal `%` becomes `%%`;
- `INSERT OR IGNORE INTO ...` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`;
- `x IN (SELECT value FROM json_each(?))`, the store's way to pass a list, becomes
  `x = ANY(%s)` and the JSON text of that parameter is decoded into a list: psycopg sends it
  as an array, whose element type PostgreSQL then compares as the column's own type
  (`json_each` yields text, which PostgreSQL will not compare with a number);
- `BEGIN IMMEDIATE` is not needed: see `WRITE_LOCK`.

Everything else that differs is spelled per backend where it is used (`is_pg(conn)`).

Why one write lock: the store's write paths were built on SQLite's model, one writer at a
time, and several read before they write (which ids are free, which items a digest still
owes, which story an item joins). Every write transaction on PostgreSQL first takes one
transaction-scoped advisory lock, which gives them the same guarantee across every instance
on the database. The costly parts of a poll (fetching, parsing, tagging, matching) happen
before it, on each instance in parallel; reads never take it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

# Here for the store's modules; they live in `location`, which the command line imports.
from monitor.store.location import is_url as is_url
from monitor.store.location import redacted as redacted

if TYPE_CHECKING:  # imported when a PostgreSQL database is opened: see `driver_errors`
    import psycopg
    from psycopg_pool import ConnectionPool

WRITE_LOCK = 0x6D6F6E69  # pg_advisory_xact_lock key of the store's writers ("moni")
POOL_SIZE = 8  # connections per process: the service loop, delivery, the console's threads
CONNECT_TIMEOUT = 10.0  # seconds to wait for the server before saying it cannot be reached

_IN_JSON = re.compile(
    r"(\bNOT\s+)?\bIN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\s*\(\s*\?\s*\)\s*\)", re.I
)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)
_LIST = "\x00"  # marks a list parameter between the two passes of `translate`


@lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, tuple[int, ...]]:
    """The statement for psycopg, and the positions of its parameters that are JSON lists."""
    sql = _IN_JSON.sub(lambda m: ("<> ALL" if m.group(1) else "= ANY") + f"({_LIST})", sql)
    if _OR_IGNORE.match(sql):
        sql = _OR_IGNORE.sub("INSERT INTO", sql, count=1)
        found = _RETURNING.search(sql)
        at = found.start() if found else len(sql.rstrip().rstrip(";"))
        sql = sql[:at].rstrip() + " ON CONFLICT DO NOTHING " + sql[at:]
    out: list[str] = []
    lists: list[int] = []
    count = 0
    quote = ""
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            quote = "" if ch == quote else quote
            out.append("%%" if ch == "%" else ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch in ("?", _LIST):
            if ch == _LIST:
                lists.append(count)
            count += 1
            out.append("%s")
        elif ch == ":" and _named(sql, i):
            end = i + 1
            while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
                end += 1
            out.append(f"%({sql[i + 1 : end]})s")
            i = end
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out), tuple(lists)


def _named(sql: str, i: int) -> bool:
    """Whether the `:` at `i` starts a named parameter (not a `::` cast)."""
    before = sql[i - 1] if i else " "
    after = sql[i + 1] if i + 1 < len(sql) else " "
    return before != ":" and (after.isalpha() or after == "_")


def _params(params: Any, lists: tuple[int, ...]) -> Any:
    if not lists or isinstance(params, Mapping):
        return params
    values = list(params)
    for at in lists:
        values[at] = json.loads(values[at])
    return values


class PgConn:
    """One pooled connection, with the calls the store makes on a `sqlite3.Connection`."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Any = ()) -> Any:
        text, lists = translate(sql)
        return self.raw.execute(text, _params(params, lists) or None)

    def executemany(self, sql: str, rows: Any) -> Any:
        text, lists = translate(sql)
        cursor = self.raw.cursor()
        cursor.executemany(text, [_params(r, lists) for r in rows])
        return cursor


class PgDatabase:
    """A pool of connections to one database (autocommit: a read is its own statement, as
    in SQLite; `transaction` opens a write transaction under `WRITE_LOCK`)."""

    def __init__(self, url: str) -> None:
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            open=False,
            name="monitor",
        )
        self.pool.open(wait=True, timeout=CONNECT_TIMEOUT)

    @contextmanager
    def connection(self) -> Iterator[PgConn]:
        with self.pool.connection(timeout=CONNECT_TIMEOUT) as raw:
            yield PgConn(raw)

    @contextmanager
    def transaction(self) -> Iterator[PgConn]:
        with self.pool.connection(timeout=CONNECT_TIMEOUT) as raw, raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield PgConn(raw)

    def rows(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        with self.connection() as conn:
            cursor = conn.execute(sql, params)
            if cursor.description is None:
                return []
            names = [d.name for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.pool.close()


def driver_errors(name: str, *also: type[Exception]) -> tuple[type[Exception], ...]:
    """`also` and `psycopg.<name>` (`"Error"`, `"OperationalError"`, which covers the pool's
    timeout, `"IntegrityError"`), for `except` and `isinstance`; `psycopg.<name>` only once the
    driver is loaded.

    psycopg is imported only when a PostgreSQL database is opened: a command on SQLite would
    pay about a tenth of a second at start-up for it, and before then none of its errors can
    be raised."""
    module = sys.modules.get("psycopg")
    return (*also, getattr(module, name)) if module is not None else also


def is_pg(conn: object) -> bool:
    """Whether a connection handed to the store's helpers is PostgreSQL's."""
    return isinstance(conn, PgConn)


# What the store's helpers are handed: a write transaction on either backend.
Conn = sqlite3.Connection | PgConn

"""A cheap, independent check that the database still answers (for /healthz).

It lives in `store` because it opens its own connection: only this package speaks SQL.
`probe_for` picks the check: the SQLite file's (`DatabaseProbe`) or the PostgreSQL server's
(`ServerProbe`).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Protocol

from monitor.store.location import DbLocation, redacted

PROBE_TIMEOUT = 2.0  # seconds a health probe waits for a database lock, or for a server


SQLITE_HEADER = b"SQLite format 3\x00"


class DatabaseProbe:
    """Whether the database file the service opened still answers.

    Not through the service's own connection: it keeps reading a file that was deleted or
    replaced (its open inode), and after a checkpoint-free replacement even the WAL answers
    for the lost file. So the probe checks, cheapest first, that the path still exists, is
    still an SQLite file, is still the file the service opened, and answers a fresh
    read-only query.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # One descriptor, kept open for the service's life and never closed while it runs:
        # on Linux, closing ANY descriptor of a file drops every POSIX lock this process holds
        # on it, SQLite's included. Opening and closing the file at each probe let another
        # process's last close delete the WAL under the running service, whose commits then
        # went to a deleted file.
        self._fd = os.open(path, os.O_RDONLY)
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """What is wrong, or None when all is well."""
        try:
            st = os.stat(self.path)
        except OSError as error:
            return f"database {self.path}: {error.strerror or error}"
        try:
            if (st.st_dev, st.st_ino) != self._identity:
                # Another file now: opening and closing it leaves the service's locks alone.
                with self.path.open("rb") as other:
                    if other.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                        return (
                            f"database {self.path} was replaced while the service ran; restart it"
                        )
                header = b""
            else:
                header = os.pread(self._fd, len(SQLITE_HEADER), 0)
        except OSError as error:
            return f"database {self.path}: {error.strerror or error}"
        if header != SQLITE_HEADER:
            return f"database {self.path} is not an SQLite database any more"
        return self._query()

    def _query(self) -> str | None:
        uri = self.path.absolute().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=PROBE_TIMEOUT)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as error:
            return f"database {self.path}: {error}"
        return None


class ServerProbe:
    """Whether the PostgreSQL server answers, on a short connection of its own.

    Not through the store's pool: a pooled connection may be the one that hangs, and waiting
    for a free one in a busy pool would say "slow service" where the question is "is the
    server there". A connection is made per probe and dropped; `connect_timeout` bounds it
    when the host does not answer at all (a refused connection fails at once).
    """

    def __init__(self, url: str) -> None:
        self._url = url

    def problem(self) -> str | None:
        import psycopg  # only a service on PostgreSQL pays for it

        shown = redacted(self._url)
        try:
            timeout = max(2, round(PROBE_TIMEOUT))  # libpq takes whole seconds, at least 2
            with psycopg.connect(self._url, connect_timeout=timeout, autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as error:
            # The driver's text names host and port, never the password; the URL is ours.
            reason = " ".join(str(error).split()) or type(error).__name__
            return f"database {shown} is unreachable: {reason}"
        return None


class Probe(Protocol):
    def problem(self) -> str | None: ...


def probe_for(db: DbLocation) -> Probe:
    """The health check that fits the database: its file's, or its server's."""
    if db.file is not None:
        return DatabaseProbe(db.file)
    return ServerProbe(str(db.target))

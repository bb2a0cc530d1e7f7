"""A cheap, independent check that the database file still answers (for /healthz).

It lives in `store` because it opens its own SQLite connection: only this package speaks SQL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

PROBE_TIMEOUT = 2.0  # seconds a health probe waits for a database lock


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
        st = path.stat()
        self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """What is wrong, or None when all is well."""
        try:
            with self.path.open("rb") as file:
                header = file.read(len(SQLITE_HEADER))
                st = os.fstat(file.fileno())
        except OSError as error:
            return f"database {self.path}: {error.strerror or error}"
        if header != SQLITE_HEADER:
            return f"database {self.path} is not an SQLite database any more"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"database {self.path} was replaced while the service ran; restart it"
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

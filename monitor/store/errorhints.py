"""What to tell the user when the database file or the system fails the store.

Apart from `core` because it is about the environment (a damaged file, a full disk, missing
permissions), not about the data: `Store._guard` turns such errors into a `StoreError` with
the hint found here, and lets bugs through as they are.
"""

from __future__ import annotations

import sqlite3

from monitor.store.pg import driver_errors

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


_PG_HINT = (
    "check that the PostgreSQL server in --db (or MONITOR_DB) is running and reachable,"
    " and that the user, password and database in the URL are right"
)


def _hint(exc: BaseException) -> str:
    if isinstance(exc, driver_errors("Error")):
        return _PG_HINT
    text = str(exc).lower()
    for needle, hint in _HINTS:
        if needle in text:
            return hint
    return "check the path given by --db (or MONITOR_DB)"


def _is_environmental(exc: BaseException) -> bool:
    """Whether an error comes from the file or the system rather than from a bug here."""
    return isinstance(exc, driver_errors("OperationalError", OSError)) or type(exc) in (
        sqlite3.OperationalError,
        sqlite3.DatabaseError,
    )

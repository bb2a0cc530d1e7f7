"""One `monitor run` per SQLite database: an exclusive `flock` on `<db>.lock`, held for the
service's life.

The kernel drops the lock when the process ends, however it ends (even SIGKILL), so a crash
never leaves a stale lock to clean up by hand; the pid in the file only serves the message.
CLI commands never take it: they share the database with the service safely (WAL, leases).

On PostgreSQL there is no file to lock, and none is wanted: many instances on one database
are the point (they share the work through leases in the database), so the lock is a no-op.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from monitor.errors import StoreError
from monitor.store.location import DbLocation


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class InstanceLock:
    """`with InstanceLock(db):` runs the body only if no other service uses the SQLite file
    `db`; on PostgreSQL it always runs it (`path` is None)."""

    def __init__(self, db: DbLocation) -> None:
        self.db = db
        self.path = lock_path(db.file) if db.file is not None else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreError(
                f"another monitor run (pid {holder}) is using {self.db}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # Emptied, not deleted: a newcomer that opened the file just before the deletion
            # would lock a file no longer in the folder, and a third one could then start.
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    """The holder's pid as written, or "unknown" if it has not written it yet."""
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return text if text.isdigit() else "unknown"

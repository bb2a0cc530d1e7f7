"""The service's view of the files under rules/: the last good value, reloaded on change.

An edit that cannot be loaded, for whatever reason, is one log line and a count in
`monitor_reload_errors_total`, and the last good value stays in force. Our own errors
(`MonitorError`) already name file:line; anything else (a file nested so deeply that the YAML
parser runs out of stack, a bug) is named by the files that changed since the last good load.
Only the first load may fail the service: it then refuses to start, with the same line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from monitor.errors import MonitorError

log = logging.getLogger("monitor.service")
T = TypeVar("T")

Stamp = tuple[tuple[str, int, int], ...]


def file_stamp(*paths: Path) -> Stamp:
    """What changes when any of `paths` (or the files in a folder among them) is edited."""
    stamp = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            try:
                st = file.stat()
            except FileNotFoundError:
                continue
            stamp.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


# A file changed this recently may still be being written: an editor that saves in place
# truncates it first, and a read in between finds no rules at all (which is valid). A reload
# at a tick waits until the edited files have been left alone this long; SIGHUP (`force`)
# reloads at once.
SETTLE_NS = 1_000_000_000


def settling(before: Stamp, after: Stamp, now_ns: int) -> bool:
    """Whether a file added or edited between two stamps changed less than `SETTLE_NS`
    before `now_ns`. A time in the future (a skewed clock) counts as settled: it must not
    hold reloads off for ever."""
    edited = set(after) - set(before)
    return any(0 <= now_ns - mtime < SETTLE_NS for _, mtime, _ in edited)


def changed_files(before: Stamp, after: Stamp) -> list[str]:
    """The files added, edited or removed between two stamps."""
    return sorted({entry[0] for entry in set(before) ^ set(after)})


def load_failure(error: Exception, files: list[str]) -> MonitorError:
    """Any loading failure as one line naming the files: ours already name file:line."""
    if isinstance(error, MonitorError):
        return error
    where = ", ".join(files) or "rules/"
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    hint = "nested too deeply? flatten it" if isinstance(error, RecursionError) else None
    return MonitorError(f"{where}: cannot be loaded ({what})", hint=hint or "fix or remove it")


class Watched(Generic[T]):
    """The last good value loaded from some files, reloaded when the files change."""

    def __init__(
        self,
        what: str,
        paths: tuple[Path, ...],
        load: Callable[[], T],
        on_reload: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.what, self.paths, self._load, self._on_reload = what, paths, load, on_reload
        self._stamp = file_stamp(*paths)
        try:
            self.value: T = load()
        except Exception as error:
            raise load_failure(error, [entry[0] for entry in self._stamp]) from error

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the files changed and have settled (see `SETTLE_NS`), or at once with
        `force`; True when a new value took effect."""
        stamp = file_stamp(*self.paths)
        if not force and (stamp == self._stamp or settling(self._stamp, stamp, time.time_ns())):
            return False  # unchanged, or still being saved: a later tick takes it
        changed = changed_files(self._stamp, stamp)
        self._stamp = stamp
        try:
            self.value = self._load()
        except Exception as error:  # whatever it is, the last good value stays in force
            failure = load_failure(error, changed or [entry[0] for entry in stamp])
            log.error("%s; keeping the last good %s", failure, self.what)
            log.debug("the reload failed here", exc_info=error)
            self._reported(ok=False)
            return False
        log.info("reloaded %s", self.what)
        self._reported(ok=True)
        return True

    def _reported(self, *, ok: bool) -> None:
        if self._on_reload is not None:
            self._on_reload(self.what, ok)

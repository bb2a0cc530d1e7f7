"""Processes as /proc shows them: a service's descendants (its parse workers among them),
whether a pid is still running, and waiting for pids to be gone."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def parents() -> dict[int, int]:
    """pid -> parent pid for every running process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            found[int(entry)] = stat[1]
    return found


def descendants(pid: int) -> dict[int, int]:
    """Every process below `pid` -> its depth (1 = child, 2 = grandchild...)."""
    tree = parents()
    found: dict[int, int] = {}
    frontier, depth = {pid}, 0
    while frontier:
        depth += 1
        frontier = {child for child, parent in tree.items() if parent in frontier}
        found.update({child: depth for child in frontier if child not in found})
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has ended; only its exit status is left)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait until none of `pids` runs; the ones still running when time is up."""
    deadline = time.monotonic() + timeout
    while (left := {pid for pid in pids if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left

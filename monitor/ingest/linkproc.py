"""Story linking in a process of its own, for a cycle that stores many items.

Why: a cold poll stores tens of thousands of items, and linking them is the costliest step
after parsing. In the polling process it shared one interpreter lock with storing, so that
process was what the cycle waited for while the parse workers waited for it (a cold poll of
1,000 feeds with the default rules: ~20 CPU-s there against ~15 in the two workers). In a
process of its own, linking runs beside storing and the workers: the cores do the work.

What stays as it was: the same `link_pending`, the same batches in the same order, so the
same stories; the decisions are written by this process's own connection in one transaction
per batch, as before (the store takes one writer at a time, SQLite's lock or PostgreSQL's).
What it costs: the process starts from the workers' fork server (a few ms), opens the store
and loads the open stories once per cycle; the kept linker of the polling process then sees
that someone else linked (`Store.story_token`) and loads them again at its next use. So a
cycle starts it only once a full batch waits (`linking.BATCH`): the small cycles of a running
service link where they always did.

If it fails (killed, out of memory, a store error), the batch it held was never committed:
its items are still queued, and the cycle links them itself at its end.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import util
from typing import Protocol

from monitor.ingest.forking import forkserver  # the parse workers' fork server
from monitor.ingest.trim import give_back
from monitor.ingest.workers import die_with
from monitor.store import Store

__all__ = ["LinkJob", "LinkerProcess"]

log = logging.getLogger("monitor.stories")


class LinkJob(Protocol):
    """What the process runs: `linking.link_pending` with its window and linker bound."""

    def __call__(self, store: Store, *, full: bool, batch: int) -> int: ...


_STORE: list[Store] = []  # in the process: its connection, opened once


class LinkerProcess:
    """One process that runs `job` on `store`'s database, started at the first call. `job`
    is sent to the process: a function at a module's top level (or a `functools.partial` of
    one), with arguments that are too."""

    def __init__(self, store: Store, job: LinkJob) -> None:
        self._target = store.target
        self._job = job
        self._pool: ProcessPoolExecutor | None = None
        self.pid: int | None = None  # the process's, once it answered

    @property
    def started(self) -> bool:
        return self._pool is not None

    async def link(self, *, full: bool, batch: int) -> int:
        """`job(store, full=full, batch=batch)` in the process: how many it linked."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, forkserver(), initializer=_open, initargs=(self._target, os.getpid())
            )
        loop = asyncio.get_running_loop()
        linked, pid = await loop.run_in_executor(self._pool, _link, self._job, full, batch)
        if self.pid is None:
            self.pid = pid
            log.info("new items are linked to stories in a process of their own (pid %d)", pid)
        return linked

    async def close(self) -> None:
        """Let the process finish the batch in hand, and end it."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


def _open(target: str, owner: int) -> None:
    die_with(owner)  # never outlive the cycle's process, even after a SIGKILL
    store = Store(target)
    _STORE.append(store)
    util.Finalize(store, store.close, exitpriority=10)  # closed as the process ends


def _link(job: LinkJob, full: bool, batch: int) -> tuple[int, int]:
    linked = job(_STORE[0], full=full, batch=batch)
    give_back()  # the batch's memory, before the next one
    return linked, os.getpid()

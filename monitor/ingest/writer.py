"""One writer per poll cycle: the saves of many feeds go to the store in one transaction.

A feed's poll hands its save (items, matches, new state) to `BatchWriter.save` and waits for
its result. One task writes: it takes every save queued so far (at most `max_batch`) and
stores them with `Store.save_batch`, in a thread (SQLite releases the GIL, so fetches and
parses go on meanwhile); the saves queued while it writes make the next batch. So a busy cycle
writes in large transactions and a quiet one (a feed now and then) writes each feed at once.

What stays true, as with a transaction per feed:
- an item is stored with its matches and its feed's state, or not at all;
- one feed's failed save is rolled back alone (a savepoint) and raises in that feed's poll;
- a cancelled cycle loses nothing: a batch being written completes (the thread cannot be
  stopped, and `Store.close` waits for it), and a save still queued is dropped together with
  the feed's new state, so the next poll fetches the same items again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

from monitor.models import StoreResult
from monitor.store import Store
from monitor.store.saving import FeedSave

__all__ = ["BatchWriter"]

# Feeds per transaction. Past ~50 a larger batch gains little, and its feeds hold their places
# in the cycle (poll.IN_HAND_PER_REQUEST) until it commits: a batch as large as those places
# made fetching and parsing stop for every write.
MAX_BATCH = 64

_Pending = tuple[FeedSave, "asyncio.Future[StoreResult]"]


class BatchWriter:
    """`async with BatchWriter(store) as writer:` then `await writer.save(...)` per feed."""

    def __init__(self, store: Store, max_batch: int | None = None) -> None:
        self._store = store
        self._max_batch = max(max_batch or MAX_BATCH, 1)
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BatchWriter:
        self._task = asyncio.create_task(self._run(), name="monitor-store-writer")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _, waiting in self._queue:  # only when the cycle was cancelled: see the docstring
            waiting.cancel()
        self._queue.clear()

    async def save(self, save: FeedSave) -> StoreResult:
        """Store one feed's save with others; raises what storing this feed raised."""
        if self._task is None:
            raise RuntimeError("BatchWriter is not open: use `async with BatchWriter(store):`")
        waiting: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        self._queue.append((save, waiting))
        self._wake.set()
        return await waiting

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write(batch)

    async def _write(self, batch: Sequence[_Pending]) -> None:
        saves = [save for save, _ in batch]
        try:
            # Shielded: if the cycle is cancelled meanwhile, the thread finishes anyway and
            # its results must still reach the feeds that wait for them.
            results = await asyncio.shield(asyncio.to_thread(self._store.save_batch, saves))
        except Exception as exc:  # the whole transaction failed (disk full): every feed
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(exc)
            return
        for (_, waiting), result in zip(batch, results, strict=True):
            if waiting.done():  # its poll was cancelled
                continue
            if isinstance(result, Exception):
                waiting.set_exception(result)
            else:
                waiting.set_result(result)

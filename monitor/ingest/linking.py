"""Stories at ingest: link every item stored since the last time to a story.

A poll cycle links while it stores (`linking_alongside`, around `poll.poll_cycle`'s feeds):
each time `BATCH` items wait, they are linked in a process of its own (`linkproc`) while
the fetches, parses and saves go on, and what is left is linked when the cycle's last save
is done (in the polling process, if no batch was ever full). The store
queues every item it stores (`Store.pending_stories`), with what the parse workers read of
its text (`Store.pending_reads`); here each is turned into a `Report` with the rules it
matched and that read, and handed to the linker, `BATCH` at a time in stored order, and
the decisions are written back in one transaction per batch. Batches are the same whether
they are linked during the cycle or after it, so the stories are too. The linker never
revisits a decision, so an analyst's split or merge is never undone.

The linker is kept between cycles (per store) while the store's stories are as it left them:
`Store.story_token` changes when anything but this linker wrote links (an analyst's split or
merge, another process's poll, retention). Then, and every `RELOAD_AFTER` new stories, it is
rebuilt from the stories the store holds. Loading a week of stories costs about as much as
linking them, so rebuilding each cycle would make every small cycle pay for the whole window.

Memory stays bounded: only the stories open when the oldest pending report came out are
kept (last report within the window, looking back at most `LOOKBACK`), and the pending items
are taken `BATCH` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.ingest.linkproc import LinkerProcess
from monitor.models import Settings, StoredItem
from monitor.store import Store
from monitor.store.stories import NewLink, StoryToken
from monitor.story.linker import WINDOW, Linker, Report, report_of
from monitor.story.profile import unpacked_read

log = logging.getLogger("monitor.stories")

BATCH = 2_000
# A backlog of old news (a feed just added) may join stories at most this far back: loading
# every story of the retention period would make a first poll of an old feed cost that much.
LOOKBACK = timedelta(days=7)
# The kept linker names the stories it started by provisional ids; the map to their real ids
# grows with them, so the linker is rebuilt (with real ids) after this many.
RELOAD_AFTER = 20_000
# How often a cycle looks whether a full batch waits (a count of a small table).
CHECK_SECONDS = 0.25

MakeLinker = Callable[[timedelta], Linker]


@dataclass
class _Kept:
    """A linker and what it knows of the store."""

    linker: Linker
    make: MakeLinker
    window: timedelta
    token: StoryToken
    made: dict[int, int] = field(default_factory=dict)  # provisional id -> real story id
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(-1, -1))


_KEPT: weakref.WeakKeyDictionary[Store, _Kept] = weakref.WeakKeyDictionary()


def _reports(
    store: Store, items: list[StoredItem], reads: Mapping[int, str] | None = None
) -> list[Report]:
    """The items as the linker sees them. `reads`: what the parse workers read of pending
    items' texts (`Store.pending_reads`): the storing process then neither folds nor reads
    them again (a fifth of linking's CPU there). An item without one is read here."""
    rules = store.matched_rules([s.id for s in items])
    reads = reads or {}
    return [
        report_of(s.id, s.item, rules.get(s.id, ()), unpacked_read(reads.get(s.id))) for s in items
    ]


def _since(pending: list[StoredItem], window: timedelta) -> datetime:
    """The last report a story needs to be open for this batch."""
    times = [s.item.published for s in pending]
    oldest = max(min(times), max(times) - LOOKBACK)
    return oldest - min(window, LOOKBACK)


def _fresh(store: Store, make: MakeLinker, window: timedelta, since: datetime) -> _Kept:
    token = store.story_token()  # first: a change while loading makes the next run reload
    linker = make(window)
    pairs = store.open_stories(since)
    reports = _reports(store, [s for _, s in pairs])
    linker.load(zip((sid for sid, _ in pairs), reports, strict=True))
    return _Kept(linker, make, window, token)


def _ready(store: Store, make: MakeLinker, window: timedelta, since: datetime) -> _Kept:
    """The kept linker if the store is as it left it, else one loaded from the store."""
    kept = _KEPT.get(store)
    if (
        kept is not None
        and (kept.make, kept.window) == (make, window)
        and len(kept.made) < RELOAD_AFTER
        and kept.token == store.story_token()
    ):
        kept.linker.forget_before(since)  # what a fresh load would leave out
        return kept
    _KEPT[store] = kept = _fresh(store, make, window, since)
    return kept


def _link_batch(store: Store, kept: _Kept, pending: list[StoredItem]) -> int:
    links = []
    # In published order, not stored order: the feeds of a cycle are stored as their fetches
    # finish, and an online linker given the same reports in another order may group them
    # otherwise. This way a cycle of up to `BATCH` items (every cycle but a first poll or a
    # backlog) links the same stories whichever server answered first. A larger one is cut
    # into batches in stored order so that linking need not wait for its end: its stories
    # may depend on that order (three cold polls of the benchmark farm made 27, 28 and 32).
    reads = store.pending_reads([s.id for s in pending])
    for report in _reports(store, sorted(pending, key=_told), reads):
        decision = kept.linker.decide(report)
        story = decision.story if decision.story is not None else next(kept.ids)
        kept.linker.add(story, report)
        real = kept.made.get(story, story)  # a story started in an earlier batch has its id
        links.append(NewLink(report.item_id, real, decision.score, decision.why))
    made = store.save_links(links)
    kept.made.update(made)
    # Read after the save: a change by another process in between would go unseen until the
    # next reload, which costs a less informed linker, never a moved report.
    kept.token = store.story_token()
    return len(links)


def _told(stored: StoredItem) -> tuple[datetime, str, str]:
    return stored.item.published, stored.item.feed_id, stored.item.guid


def link_pending(
    store: Store,
    window: timedelta = WINDOW,
    make: MakeLinker = Linker,
    *,
    full: bool = False,
    batch: int | None = None,
) -> int:
    """Link every pending item to a story (new or existing); return how many were linked.
    With `full`, only whole batches: the rest waits for more (or for the end of a cycle).
    `batch`: items a batch, `BATCH` by default."""
    size = batch or BATCH
    linked = 0
    try:
        while (not full or store.pending_count() >= size) and (
            pending := store.pending_stories(size)
        ):
            kept = _ready(store, make, window, _since(pending, window))
            linked += _link_batch(store, kept, pending)
    except BaseException:
        _KEPT.pop(store, None)  # it may hold decisions that were never stored
        raise
    if linked:
        log.info("%d new reports linked to stories", linked)
    return linked


@contextlib.asynccontextmanager
async def linking_alongside(
    store: Store, settings: Settings, make: MakeLinker = Linker
) -> AsyncIterator[None]:
    """Link full batches while the body stores items, then (if it ends well) the rest.

    A cold poll stores tens of thousands of items; linked only at its end, they kept one core
    busy while the parse workers' sat idle. Once a full batch waits, they are linked in a
    process of their own (`linkproc`), to the end of the cycle. A failure is logged, never
    fatal (as `link_stories`), and leaves the items queued: a failed process's are linked
    here at the end of the cycle."""
    done = asyncio.Event()
    job = functools.partial(link_pending, window=settings.story_window, make=make)
    apart = LinkerProcess(store, job)
    try:
        task = asyncio.create_task(_link_while_storing(done, store, apart))
        try:
            yield
        finally:
            done.set()
            await task  # the batch in hand is finished (it cannot be stopped midway)
        if task.result():
            await _link_apart(apart, full=False)
        await link_stories(store, settings, make)  # nothing left, unless the process failed
    finally:
        await apart.close()


async def _link_while_storing(done: asyncio.Event, store: Store, apart: LinkerProcess) -> bool:
    """Link each full batch, in `apart` once one waits; whether `apart` is still to be used
    (it was started and has not failed)."""
    while not done.is_set():
        try:
            full = await asyncio.to_thread(store.pending_count) >= BATCH
        except Exception:
            log.exception("linking new items to stories failed; the end of the cycle tries again")
            return False
        linked = await _link_apart(apart, full=True) if full else 0
        if linked is None:
            return False
        if not linked:  # (another process may have linked them meanwhile)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), CHECK_SECONDS)
    return apart.started


async def _link_apart(apart: LinkerProcess, *, full: bool) -> int | None:
    """`link_pending` in the linking process: how many it linked; None if it failed (it is
    logged)."""
    try:
        linked = await apart.link(full=full, batch=BATCH)
    except Exception:
        log.exception(
            "linking new items to stories in a process of its own failed; "
            "the end of the cycle links them here"
        )
        return None
    if linked:
        log.info("%d new reports linked to stories", linked)
    return linked


async def link_stories(store: Store, settings: Settings, make: MakeLinker = Linker) -> None:
    """`link_pending` at the end of a poll cycle, in a thread like the saves. A failure is
    logged, never fatal: the items stay queued and the next cycle links them."""
    try:
        await asyncio.to_thread(link_pending, store, settings.story_window, make)
    except Exception:
        log.exception("linking new items to stories failed; the next cycle tries again")

"""One poll of one feed, top to bottom, and a cycle over many feeds.

`poll_feed` is the whole life of a feed's poll in one place, in the order it happens:
state -> conditional GET -> not modified? record and stop -> parse + normalise (the fetch
and these in a worker process for a cycle of many feeds: `remote`) -> store new and edited
items together with the new state in one transaction -> reset the error counter. Every
failure ends in a recorded state with a back-off, never in an exception that could stop the
cycle: one bad feed never stops the others.

The scheduler only decides *when* `poll_cycle` runs; `monitor poll` calls the same code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from monitor.ingest.claims import LeaseKeeper, claim_due
from monitor.ingest.feedstate import (
    backing_off,
    failed,
    first_poll,
    gone,
    history_before,
    is_due,
    succeeded,
)
from monitor.ingest.fetch import Fetcher
from monitor.ingest.forking import worker_count
from monitor.ingest.ingestion import Enriched, ingest
from monitor.ingest.knownitems import packed
from monitor.ingest.linking import linking_alongside
from monitor.ingest.remote import RemotePool
from monitor.ingest.trim import give_back
from monitor.ingest.writer import BatchWriter
from monitor.match.rule import Match
from monitor.match.ruleset import RuleSet
from monitor.models import (
    CycleSummary,
    FeedState,
    FetchResult,
    FetchStatus,
    Item,
    PollOutcome,
    Settings,
    StoreResult,
)
from monitor.models import Feed as Feed
from monitor.store import Store
from monitor.store.cluster import Leases, one_shot_id
from monitor.store.saving import Enrich, FeedSave, MatchRow

log = logging.getLogger("monitor.poll")
Clock = Callable[[], datetime]
OnOutcome = Callable[[PollOutcome], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Parser:
    """Fetches and ingests feeds: inline for a handful of feeds (and tests), else in worker
    processes (`remote`) that fetch and ingest many feeds each and send back rows to store.

    A pool's workers hold one rule set and one `Settings` (sent once, at their start); a poll
    with others (the files were reloaded) starts a new pool, and the old one is closed.
    """

    def __init__(self, workers: int = 0, *, link: bool = True) -> None:
        self.workers = workers  # 0 = inline: cheapest for a handful of feeds, and for tests
        # Whether the items will be linked to stories: then what linking reads from a text is
        # read where the text is folded anyway (`ingest`). Off only to measure linking's cost.
        self.link = link
        self._pool: RemotePool | None = None

    async def poll(
        self,
        feed: Feed,
        state: FeedState,
        fetcher: Fetcher,
        now: datetime,
        ruleset: RuleSet | None = None,
        settings: Settings | None = None,
    ) -> tuple[FetchResult, Enriched | str | None]:
        """Fetch one feed (the feed: its login, if any) and ingest its body if it has one."""
        if self.workers == 0:
            result = await fetcher.fetch(feed.id, state, feed)
            if result.status is not FetchStatus.OK:
                return result, None
            return result, await self.run(feed, result, now, ruleset, state.known_items)
        pool = self._pool_for(ruleset, settings or Settings())
        async with fetcher.slots(state.url):
            return await pool.poll(feed, state, now)

    async def run(
        self,
        feed: Feed,
        result: FetchResult,
        now: datetime,
        ruleset: RuleSet | None = None,
        known: bytes = b"",
    ) -> Enriched | str:
        """Ingest a fetched body inline; the items `known` are left bare (see `ingest`)."""
        body = result.body or b""
        return ingest(feed, body, result.headers, result.url, now, ruleset, self.link, known)

    def _pool_for(self, ruleset: RuleSet | None, settings: Settings) -> RemotePool:
        pool = self._pool
        if pool is None or pool.ruleset is not ruleset or pool.settings != settings:
            if pool is not None:
                pool.close()
            pool = self._pool = RemotePool(self.workers, ruleset, settings, self.link)
        return pool

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes running now (none inline, or before the first poll)."""
        return self._pool.pids if self._pool is not None else []

    def rest(self) -> None:
        """The cycle is over: the workers close their idle connections."""
        if self._pool is not None:
            self._pool.rest()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def abandon(self) -> None:
        """Stop at once (the service is stopping): workers are killed mid-poll. Nothing is
        lost: a worker fetches and computes, the store writes. Waiting instead could take
        forever with a worker stuck on a pathological feed."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.abandon()

    @staticmethod
    def default_workers(feed_count: int) -> int:
        """Worker processes for a cycle: none for a few feeds, else one per core."""
        return worker_count(feed_count)


async def poll_feed(
    feed: Feed,
    fetcher: Fetcher,
    store: Store,
    parser: Parser,
    ruleset: RuleSet | None = None,
    clock: Clock = utcnow,
    settings: Settings | None = None,
    *,
    writer: BatchWriter | None = None,
    known: FeedState | None = None,
) -> PollOutcome:
    """Poll one feed and record the outcome. Never raises for the feed's own failures.

    With a `ruleset`, new and edited items get their regions and rule matches inside the
    transaction that stores them, so a stored item is never without its matches. Matches of
    old news are kept as history (see `history_before`), so a feed's first poll alerts only
    on what is fresh. A cycle passes its `writer` (many feeds per transaction) and the state
    it read for every feed at its start (`known`: a feed's own query would wait for the
    writer's lock, stalling the whole cycle); alone, a feed writes its own transaction.
    """
    started, t0 = clock(), time.perf_counter()
    state = first_poll(fresh_state(known or store.get_state(feed.id), feed), started)
    result, enriched = await parser.poll(feed, state, fetcher, started, ruleset, settings)
    stored = StoreResult()
    if result.status is FetchStatus.OK and enriched is not None:
        if isinstance(enriched, str):
            result = dataclasses.replace(result, status=FetchStatus.ERROR, error=enriched)
        else:
            items = [item for item, _, _, _ in enriched]
            new_state = succeeded(state, feed, result, started, packed(items))
            old = history_before(new_state, settings or Settings(), started)
            prepared = [rows for _, _, rows, _ in enriched]
            reads = [read for _, _, _, read in enriched]
            enrich = _enrich(feed, ruleset, enriched) if ruleset else None
            save = FeedSave(feed.id, items, new_state, enrich, old, prepared, reads)
            stored = await _store(store, writer, save)
            return outcome(feed, result, t0, stored)
    if result.status is FetchStatus.NOT_MODIFIED:
        await _store(store, writer, FeedSave(feed.id, (), succeeded(state, feed, result, started)))
    elif result.status is FetchStatus.GONE:
        await _store(store, writer, FeedSave(feed.id, (), gone(state, result, started)))
    else:
        await _store(store, writer, FeedSave(feed.id, (), failed(state, feed, result, started)))
    return outcome(feed, result, t0, stored)


def _enrich(feed: Feed, ruleset: RuleSet, enriched: Enriched) -> Enrich:
    """What the store asks for the new and edited items: their matches from the worker, or
    for an item it skipped as known that the store has not (see `knownitems`), tagged and
    matched here."""
    found = {item.guid: matches for item, matches, _, _ in enriched if matches is not None}

    def enrich(item: Item) -> tuple[Item, Sequence[Match | MatchRow]]:
        matches = found.get(item.guid)
        return ruleset.enrich(item, feed) if matches is None else (item, matches)

    return enrich


async def _store(store: Store, writer: BatchWriter | None, save: FeedSave) -> StoreResult:
    if writer is not None:
        return await writer.save(save)
    if not save.items:  # the state alone: a quick write, not worth a thread
        store.save_state(save.state)
        return StoreResult()
    # In a thread: SQLite releases the GIL, so fetches and parses go on meanwhile. If the
    # cycle is cancelled here the transaction still completes, and Store.close waits for it
    # (the store's lock).
    results = await asyncio.to_thread(store.save_batch, [save])
    if isinstance(results[0], Exception):
        raise results[0]
    return results[0]


async def guarded(
    feed: Feed,
    fetcher: Fetcher,
    store: Store,
    parser: Parser,
    ruleset: RuleSet | None,
    clock: Clock,
    settings: Settings | None = None,
    *,
    writer: BatchWriter | None = None,
    known: FeedState | None = None,
) -> PollOutcome:
    """`poll_feed`, with a bug or an environment failure (disk full) contained to its feed."""
    t0 = time.perf_counter()
    try:
        return await poll_feed(
            feed, fetcher, store, parser, ruleset, clock, settings, writer=writer, known=known
        )
    except Exception as exc:
        log.exception("feed %s: unexpected error", feed.id, extra={"feed": feed.id})
        return PollOutcome(
            feed_id=feed.id,
            status=FetchStatus.ERROR,
            error=f"unexpected error: {exc!r} (see the log; please report it)",
            elapsed=time.perf_counter() - t0,
        )


# Feeds between the start of their fetch and the end of their save, per request in flight:
# enough that the fetcher never waits for the parsers or the writer, few enough that bodies
# and items cannot pile up (fetching outruns parsing: at 10,000 feeds they took 700 MiB).
# At the default 32 requests: 128 feeds, twice the writer's largest batch. Storing is what a
# cold poll waits for, so more places only hold more parsed feeds in the polling process:
# 8 a request against 4, taken in turns (3 pairs), gave the same unlinked cold poll (7.08 s
# against 6.93 s) with 5-14 MiB more at the peak.
IN_HAND_PER_REQUEST = 4


async def bounded(
    slots: asyncio.Semaphore, poll: Callable[[], Awaitable[PollOutcome]]
) -> PollOutcome:
    async with slots:  # the poll starts once it has a slot
        return await poll()


def fresh_state(state: FeedState | None, feed: Feed) -> FeedState:
    """The stored `state`, or a fresh one when the feed is new or its URL was edited by hand."""
    if state is None or state.configured_url != feed.url:
        return FeedState(feed_id=feed.id, url=feed.url, configured_url=feed.url)
    return state


def outcome(feed: Feed, result: FetchResult, t0: float, stored: StoreResult) -> PollOutcome:
    return PollOutcome(
        feed_id=feed.id,
        status=result.status,
        new=stored.new,
        updated=stored.updated,
        matches=stored.matches,
        history=stored.history,
        error=result.error if result.status in (FetchStatus.ERROR, FetchStatus.GONE) else None,
        elapsed=time.perf_counter() - t0,
    )


async def poll_cycle(
    feeds: Sequence[Feed],
    store: Store,
    settings: Settings,
    *,
    force: bool = False,
    ignore_backoff: bool = False,
    parser: Parser | None = None,
    ruleset: RuleSet | None = None,
    on_outcome: OnOutcome | None = None,
    clock: Clock = utcnow,
    holder: str | None = None,
) -> CycleSummary:
    """Poll every due feed concurrently (the fetcher bounds concurrency) and summarise.

    `force` and `ignore_backoff` as in `is_due`; a forced cycle reports the feeds it left out
    because they are backing off, so `monitor poll` can say which and until when. Only the
    due feeds this cycle claims are polled (`claims`), as `holder` (the service's instance
    id; a one-shot command's own by default); the summary names those another instance holds.
    """
    t0 = time.perf_counter()
    # Which feeds are due, from what that needs of every state: the states themselves are read
    # for the feeds this cycle claims (a service's tick mostly finds a few due of thousands).
    schedules = store.schedules()
    now = clock()
    due = [
        f
        for f in feeds
        if is_due(f, schedules.get(f.id), now, force=force, ignore_backoff=ignore_backoff)
    ]
    waiting = backing_off(feeds, schedules, now) if force and not ignore_backoff else ()
    leases = Leases(store, holder or one_shot_id())
    claim_held: tuple[tuple[str, str], ...] = ()
    states: dict[str, FeedState] = {}
    if due:
        claim = await claim_due(
            store, leases, due, now, settings.lease,
            lambda f, s: is_due(f, s, now, force=force, ignore_backoff=ignore_backoff),
            share=holder is not None,
        )  # fmt: skip
        due, states, claim_held = list(claim.feeds), claim.states, claim.held
    own_parser = parser is None
    parser = parser or Parser(Parser.default_workers(len(due)))
    outcomes: list[PollOutcome] = []
    try:
        # Stories are linked while the items are stored, the rest once the writer is done.
        async with (
            LeaseKeeper(leases, [f.id for f in due], settings.lease, clock) as keeper,
            linking_alongside(store, settings),
            Fetcher(settings) as fetcher,
            BatchWriter(store) as writer,
        ):
            in_hand = asyncio.Semaphore(IN_HAND_PER_REQUEST * settings.concurrency)
            tasks = [
                bounded(in_hand, functools.partial(
                    guarded, feed, fetcher, store, parser, ruleset, clock, settings,
                    writer=writer, known=fresh_state(states.get(feed.id), feed),
                ))
                for feed in due
            ]  # fmt: skip
            for next_done in asyncio.as_completed(tasks):
                result = await next_done
                keeper.stored(result.feed_id)
                outcomes.append(result)
                if on_outcome is not None:
                    on_outcome(result)
    finally:
        if own_parser:
            parser.close()
        else:
            parser.rest()
        give_back()  # what the cycle freed, before the next one or the digests
    elapsed = time.perf_counter() - t0
    return CycleSummary(
        outcomes=tuple(outcomes), elapsed=elapsed, backing_off=waiting, held=claim_held
    )

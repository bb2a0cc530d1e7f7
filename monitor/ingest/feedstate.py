"""What a poll does to a feed's stored state, and when a feed is due: the rules `poll` follows.

Pure functions over `FeedState` values, apart from `poll` so that the poll of one feed reads
top to bottom there while these rules (back-off, first poll, what counts as old news) each
have a name and a docstring of their own.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from monitor.backoff import retry_delay
from monitor.models import Feed, FeedState, FetchResult, Settings

# Feeds due within this margin are polled with the current cycle rather than waiting a tick.
DUE_MARGIN = timedelta(seconds=5)


class Schedule(Protocol):
    """What `is_due` reads of a feed's state: a `FeedState`, or the store's `FeedSchedule`."""

    @property
    def configured_url(self) -> str | None: ...
    @property
    def next_due(self) -> datetime | None: ...
    @property
    def consecutive_errors(self) -> int: ...
    @property
    def gone(self) -> bool: ...


def first_poll(state: FeedState, now: datetime) -> FeedState:
    """The state with its first poll recorded: set once, and kept by every later save.

    A feed polled before monitor recorded first polls (an older database) counts from its last
    poll: what it served then was seen then, so only items new since are judged afresh.
    """
    if state.first_polled is not None:
        return state
    return dataclasses.replace(state, first_polled=state.last_attempt or now)


def history_before(state: FeedState, settings: Settings, now: datetime) -> datetime:
    """Items published before this are old news: their matches are history, never alerts.

    Old news is what was published well before monitor first polled the feed (the backlog
    of a feed just added: `first_poll_grace`), or anything older than `alert_max_age` (a feed
    back after a long outage, or one that publishes old articles late).
    """
    first = state.first_polled or now
    return max(first - settings.first_poll_grace, now - settings.alert_max_age)


def next_poll(feed: Feed, now: datetime) -> datetime:
    """Interval plus up to 10% jitter, so feeds added together drift apart."""
    jitter = random.uniform(0, 0.1) * feed.interval.total_seconds()
    return now + feed.interval + timedelta(seconds=jitter)


def succeeded(
    state: FeedState,
    feed: Feed,
    result: FetchResult,
    now: datetime,
    known_items: bytes | None = None,
) -> FeedState:
    """The state after a good poll; `known_items` when a body was stored (`knownitems`),
    else the body the state knew is still the feed's."""
    return dataclasses.replace(
        state,
        known_items=state.known_items if known_items is None else known_items,
        url=result.permanent_url or state.url,
        # The fetcher already carries validators forward when a response has none.
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=result.body_hash,
        last_attempt=now,
        last_success=now,
        consecutive_errors=0,
        last_error=None,
        next_due=next_poll(feed, now),
    )


def failed(state: FeedState, feed: Feed, result: FetchResult, now: datetime) -> FeedState:
    errors = state.consecutive_errors + 1
    delay = retry_delay(errors, feed.interval, result.retry_after)
    return dataclasses.replace(
        state,
        last_attempt=now,
        consecutive_errors=errors,
        last_error=result.error or "unknown error",
        next_due=now + delay,
    )


def gone(state: FeedState, result: FetchResult, now: datetime) -> FeedState:
    return dataclasses.replace(
        state,
        last_attempt=now,
        gone=True,
        last_error=result.error or "HTTP 410 Gone: the publisher removed this feed",
        next_due=None,
    )


def is_due(
    feed: Feed,
    state: Schedule | None,
    now: datetime,
    *,
    force: bool = False,
    ignore_backoff: bool = False,
) -> bool:
    """Whether a feed should be polled in a cycle starting at `now`.

    Disabled and gone feeds never are. `force` (`monitor poll`) ignores the interval but
    honours a back-off after errors: hammering a failing server helps nobody. `ignore_backoff`
    (`monitor poll --force`) polls a backing-off feed too.
    """
    if not feed.enabled:
        return False
    if state is None or state.configured_url != feed.url:
        return True
    if state.gone:
        return False
    if state.next_due is None or state.next_due <= now + DUE_MARGIN:
        return True
    return ignore_backoff if state.consecutive_errors else force


def backing_off(
    feeds: Sequence[Feed], states: Mapping[str, Schedule], now: datetime
) -> tuple[tuple[str, datetime | None], ...]:
    """The feeds a forced cycle leaves out because of errors, with when they are due again."""
    return tuple(
        (f.id, state.next_due)
        for f in feeds
        if (state := states.get(f.id)) is not None
        and not is_due(f, state, now, force=True)
        and is_due(f, state, now, force=True, ignore_backoff=True)
    )

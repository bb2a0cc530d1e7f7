"""The console's feeds page: every feed of `rules/feeds.yaml` and its health, sortable.

The figures are those of `monitor status` and `monitor feeds list`, from the same code: the
stored `FeedState`, `cli.report.health` for the word, `ingest.feedstate.backing_off` for the
feeds the poller is waiting on. Sorting is done here, on the server, from `?sort=&order=`
links in the headers, so it needs no script; a list of feeds is hundreds, not thousands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.cli.report import health
from monitor.ingest.feeds import load_feeds
from monitor.ingest.feedstate import backing_off
from monitor.models import Feed, FeedState
from monitor.store.web_ops import items_per_feed
from monitor.web.render import page
from monitor.web.state import console
from monitor.yamlfile.duration import format_duration

# Worst first: the default order puts the feeds that need a look at the top.
STATES = ("gone", "failing", "backing-off", "new", "ok", "disabled")
SUMMARY = ("ok", "failing", "backing-off", "disabled", "gone", "new")


@dataclass(frozen=True)
class FeedRow:
    feed: Feed
    state: FeedState | None
    health: str  # as `monitor status` words it: ok, failing x3, gone, disabled, new
    kind: str  # one of STATES: the row's class and badge
    items: int
    position: int  # in feeds.yaml

    @property
    def label(self) -> str:
        return self.feed.title or self.feed.id

    @property
    def every(self) -> str:
        return format_duration(self.feed.interval)

    @property
    def url(self) -> str:
        return self.state.url if self.state else self.feed.url

    @property
    def troubled(self) -> bool:
        return self.kind in ("gone", "failing", "backing-off")


def _errors(row: FeedRow) -> int:
    return row.state.consecutive_errors if row.state else 0


def _stored(name: str) -> Callable[[FeedRow], Any]:
    """A figure of the feed's stored state; None (sorted last) before its first poll."""
    return lambda row: getattr(row.state, name) if row.state else None


def _next_due(row: FeedRow) -> datetime | None:
    """When the poller takes the feed next; None when it never will (disabled, gone)."""
    if row.kind in ("disabled", "gone"):
        return None
    if row.state is None or row.state.next_due is None:
        return datetime.min.replace(tzinfo=UTC)  # due at the next cycle
    return row.state.next_due


# Column -> (heading, sort key). Every column of the table sorts.
COLUMNS: dict[str, tuple[str, Callable[[FeedRow], Any]]] = {
    "feed": ("Feed", lambda r: r.label.casefold()),
    "enabled": ("Enabled", lambda r: r.feed.enabled),
    "health": ("Health", lambda r: (STATES.index(r.kind), -_errors(r))),
    "every": ("Every", lambda r: r.feed.interval),
    "last_poll": ("Last poll", _stored("last_attempt")),
    "last_success": ("Last success", _stored("last_success")),
    "errors": ("Errors", _errors),
    "last_error": ("Last error", _stored("last_error")),
    "next_due": ("Next poll", _next_due),
    "items": ("Items", lambda r: r.items),
}
DEFAULT_SORT = "health"


def _kind(feed: Feed, state: FeedState | None, waiting: set[str]) -> str:
    word = health(feed, state)
    if word.startswith("failing"):
        return "backing-off" if feed.id in waiting else "failing"
    return word


def feed_rows(
    feeds: Sequence[Feed], states: dict[str, FeedState], counts: dict[str, int], now: datetime
) -> list[FeedRow]:
    waiting = {feed_id for feed_id, _ in backing_off(feeds, states, now)}
    rows = []
    for position, feed in enumerate(feeds):
        state = states.get(feed.id)
        kind = _kind(feed, state, waiting)
        rows.append(
            FeedRow(feed, state, health(feed, state), kind, counts.get(feed.id, 0), position)
        )
    return rows


def summary(rows: Sequence[FeedRow]) -> dict[str, int]:
    """Feeds per state; a backing-off feed is failing too (it failed, and waits to retry)."""
    kinds = Counter(r.kind for r in rows)
    counts = {kind: kinds.get(kind, 0) for kind in SUMMARY}
    counts["failing"] += counts["backing-off"]
    return counts


def sort_rows(rows: Sequence[FeedRow], column: str, descending: bool) -> list[FeedRow]:
    """Rows by `column`; a row without a value (never polled, no error) goes last either way,
    and ties keep the order of feeds.yaml."""
    key = COLUMNS[column][1]
    known = [r for r in rows if key(r) is not None]
    unknown = [r for r in rows if key(r) is None]
    ordered = sorted(known, key=lambda r: r.position)
    ordered.sort(key=key, reverse=descending)
    return ordered + sorted(unknown, key=lambda r: r.position)


def _sort_params(request: Request) -> tuple[str, bool]:
    column = request.query_params.get("sort") or DEFAULT_SORT
    order = request.query_params.get("order") or "asc"
    if column not in COLUMNS:
        known = ", ".join(COLUMNS)
        raise HTTPException(400, f"cannot sort by {column!r}: use one of {known}")
    if order not in ("asc", "desc"):
        raise HTTPException(400, f"order must be asc or desc, not {order!r}")
    return column, order == "desc"


def feeds_page(request: Request) -> Response:
    column, descending = _sort_params(request)
    state = console(request)
    # Parsed again only when its text changed (`load_feeds`); a bad file raises: its line.
    config = load_feeds(state.config.rules_dir / "feeds.yaml")
    store = state.store
    now = datetime.now(UTC)
    rows = feed_rows(config.feeds, store.states(), items_per_feed(store), now)
    # htmx refreshes the table every 30 s: it gets the table alone, not the whole page.
    fragment = request.headers.get("hx-request") == "true"
    return page(
        request,
        "feeds_table.html" if fragment else "feeds.html",
        active="feeds",
        rows=sort_rows(rows, column, descending),
        summary=summary(rows),
        columns={name: heading for name, (heading, _) in COLUMNS.items()},
        sort=column,
        descending=descending,
        now=now,
    )


ROUTES: list[BaseRoute] = [Route("/feeds", feeds_page, methods=["GET"])]

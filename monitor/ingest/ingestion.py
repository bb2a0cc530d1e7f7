"""The CPU-heavy part of a poll: one fetched body to items with their rows ready to store.

Runs where the body was fetched: in the cycle's own process for a handful of feeds, else in
a worker process (`remote`), so that only rows ready to write reach the process that stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from monitor.errors import ParseError
from monitor.ingest.normalize import normalize
from monitor.ingest.parse import parse
from monitor.match.ruleset import RuleSet
from monitor.models import Feed, Item
from monitor.store.saving import MatchRow, Prepared, match_row, prepare

__all__ = ["Enriched", "ingest"]

# Items with their regions set, their matches, and their rows ready for the store.
Enriched = list[tuple[Item, tuple[MatchRow, ...], Prepared]]


def ingest(
    feed: Feed,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    ruleset: RuleSet | None = None,
) -> Enriched | str:
    """Parse, normalise, tag and match one body, and prepare the rows to store.

    Every item is tagged and matched here, in parallel when in a worker, although the store
    keeps the results of new and edited items only. Returns the error text instead of
    raising: our exceptions carry keyword arguments and do not survive pickling back from a
    worker process.
    """
    try:
        items = normalize(feed, parse(feed.id, body, headers, url), url, now)
    except ParseError as error:
        return error.message if not error.hint else f"{error.message} ({error.hint})"
    if ruleset is None:
        return [(item, (), prepare(item)) for item in items]
    return [_enrich(ruleset, item, feed) for item in items]


def _enrich(
    ruleset: RuleSet, item: Item, feed: Feed
) -> tuple[Item, tuple[MatchRow, ...], Prepared]:
    tagged, matches = ruleset.enrich(item, feed)
    return tagged, tuple(match_row(m) for m in matches), prepare(tagged)

"""The CPU-heavy part of a poll: one fetched body to items with their rows ready to store.

Runs where the body was fetched: in the cycle's own process for a handful of feeds, else in
a worker process (`remote`), so that only rows ready to write reach the process that stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from monitor.errors import ParseError
from monitor.ingest.knownitems import fingerprint, fingerprints
from monitor.ingest.normalize import normalize
from monitor.ingest.parse import parse
from monitor.match.rule import Match
from monitor.match.ruleset import RuleSet
from monitor.match.textnorm import fold
from monitor.models import Feed, Item
from monitor.store.saving import MatchRow, Prepared, match_row, prepare
from monitor.story.profile import packed_read, read_text

__all__ = ["Enriched", "ingest"]

# Items with their regions set, their matches, their rows ready for the store, and what story
# linking reads from their text, packed as it waits in the store (`profile.packed_read`; None
# when the items will not be linked). An item the store has already (`known`) comes bare:
# (item, None, None, None).
Ready = tuple[Item, tuple[MatchRow, ...] | None, Prepared | None, str | None]
Enriched = list[Ready]


def ingest(
    feed: Feed,
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    ruleset: RuleSet | None = None,
    link: bool = True,
    known: bytes = b"",
) -> Enriched | str:
    """Parse, normalise, tag and match one body, and prepare the rows to store; with `link`,
    read what story linking needs from each text too. The items `known` (the feed state's
    `known_items`) are left as they are: the store has them.

    Every other item is tagged and matched here, in parallel when in a worker, although the
    store keeps the results of new and edited items only. Returns the error text instead of
    raising: our exceptions carry keyword arguments and do not survive pickling back from a
    worker process.
    """
    try:
        items = normalize(feed, parse(feed.id, body, headers, url), url, now)
    except ParseError as error:
        return error.message if not error.hint else f"{error.message} ({error.hint})"
    seen = fingerprints(known)
    return [
        (item, None, None, None)
        if seen and fingerprint(item) in seen
        else _enriched(item, feed, ruleset, link)
        for item in items
    ]


def _enriched(item: Item, feed: Feed, ruleset: RuleSet | None, link: bool) -> Ready:
    if ruleset is None:
        return _ready(item, (), (fold(item.title), fold(item.summary)), None, link)
    return _ready(*ruleset.enrich_folded(item, feed), link)


def _ready(
    item: Item,
    matches: Sequence[Match],
    folded: tuple[str, str],
    words: bytes | None,
    link: bool,
) -> Ready:
    """An item's rows and story read, both from its title and summary folded once (by the
    matcher's scan, or here): folded apart, the same as folding them joined by a line break.
    `words`: their words as the scan found them (`Scan.words`), if it ran."""
    read = packed_read(read_text("\n".join(folded), words)) if link else None
    return item, tuple(match_row(m) for m in matches), prepare(item, folded), read

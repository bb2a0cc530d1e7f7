"""The playground's trial: a rule (typed) and a rule in force, each run by the real matcher on
the stored items of the last N days, and what one finds that the other does not.

Cost (the page re-runs it as one types): each rule runs only on the items the full-text index
says may match it (`store.web_rules.prefilter`) and those with Korean text, fetched in one
query with just the columns matching reads (~10 us per row, more for a rule of many ORs over a
dense index); ~20 us per item to build and match, ~100 us more when the rule has `region:` or
`entity:` (the item is tagged afresh, as `rules test` does). Each rule reads the newest items
first and stops at `MAX_SCAN` items or `BUDGET` CPU seconds; the page then says so, and the two
rules are compared over the items both read. Measured on 100,000 stored items, 50,000 in the
last 7 days, a third of those matching the default rules (denser than any real feed mix): a
query alone ~230 ms CPU, a query beside a rule in force ~480 ms, a rule's "try" link ~280 ms.
Only the items shown are fetched whole.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.match.engine import Matcher
from monitor.match.nodes import EntityScope, Region, walk
from monitor.match.rule import Match, Rule
from monitor.match.ruleset import RuleSet
from monitor.match.textnorm import fold
from monitor.models import Feed, Item, StoredItem
from monitor.store import Store
from monitor.store.web_rules import ItemText, count_window, prefilter, window_texts

# Items read per rule, newest first: about what `BUDGET` gets through (~25 us each to build
# and match, ~120 us when each must be tagged first), so few are fetched for nothing.
MAX_SCAN = 4_000
MAX_SCAN_TAGGED = 1_000
# CPU seconds (this thread's: contention hardly moves it) one rule may spend matching: two
# rules and the page stay within half a second even when the window is dense with matches.
BUDGET = 0.1
SHOWN = 50  # items listed per group (all are counted)
MAX_DAYS = 3660

Segments = list[tuple[str, bool]]  # text pieces, True for a hit (shown as <mark>)


@dataclass(frozen=True)
class Found:
    """What one rule matched in the window: item id -> its match (and the item's text)."""

    matches: dict[int, tuple[Match, ItemText]]
    scanned: int  # items the matcher ran on
    capped: bool  # the window held more than it could read: the newest were read
    narrowed: bool  # the full-text index narrowed the items first
    # When capped: the last item read, as (published, id), the order they are read in.
    reached: tuple[datetime, int] | None = None


@dataclass(frozen=True)
class Shown:
    stored: StoredItem
    title: Segments
    summary: Segments
    rule_id: str


@dataclass(frozen=True)
class Trial:
    days: int
    window: int  # items published in the window
    added: tuple[Shown, ...]  # the typed rule matches, the rule in force does not
    removed: tuple[Shown, ...]  # the rule in force matches, the typed rule does not
    both: tuple[Shown, ...]
    counts: Mapping[str, int]  # added, removed, both
    capped: bool
    reached: datetime | None  # when capped: both rules were tried on the items since then
    seconds: float  # wall time, for the page to show


def find_matches(
    store: Store, rule: Rule, since: datetime, ruleset: RuleSet | None, feeds: Mapping[str, Feed]
) -> Found:
    """The stored items published at or after `since` that `rule` matches, as `monitor rules
    test --since` finds them (the benchmark's unit: one rule over one window). Newest first,
    within `MAX_SCAN` items and `BUDGET` seconds of this thread's CPU time."""
    tagged = ruleset is not None and any(
        isinstance(node, Region | EntityScope) for node in _nodes(rule)
    )
    fts = prefilter(rule, pg=store.backend == "postgresql")
    texts, capped = window_texts(store, since, fts, MAX_SCAN_TAGGED if tagged else MAX_SCAN)
    matcher = Matcher.compile([dataclasses.replace(rule, enabled=True)])
    found: dict[int, tuple[Match, ItemText]] = {}
    deadline = time.thread_time() + BUDGET
    for scanned, text in enumerate(texts):
        if scanned % 256 == 255 and time.thread_time() > deadline:
            last = texts[scanned - 1]
            return Found(found, scanned, True, fts is not None, (last.published, last.id))
        item = _item(text)
        if tagged and ruleset is not None:
            regions, entities = ruleset.tag_all(text.title, text.summary)
            item = dataclasses.replace(item, regions=regions, entities=entities)
        for match in matcher.match(item, feeds.get(text.feed_id)):
            found[text.id] = (match, text)
    reached = (texts[-1].published, texts[-1].id) if capped and texts else None
    return Found(found, len(texts), capped, fts is not None, reached)


def _nodes(rule: Rule) -> list[object]:
    return list(walk(rule.tree)) if rule.tree is not None else []


def _item(text: ItemText) -> Item:
    return Item(
        feed_id=text.feed_id, guid="", link=None, title=text.title, summary=text.summary,
        html="", author=None, lang=text.lang, published=text.published,
        first_seen=text.published, content_hash="",
    )  # fmt: skip


def run_trial(
    store: Store,
    typed: Rule | None,
    in_force: Rule | None,
    days: int,
    *,
    ruleset: RuleSet | None,
    feeds: Mapping[str, Feed],
    now: datetime,
) -> Trial:
    """`typed` and `in_force` (either may be None) over the items of the last `days` days."""
    started = time.perf_counter()
    since = now - timedelta(days=days)
    empty = Found({}, 0, False, True)
    mine = find_matches(store, typed, since, ruleset, feeds) if typed else empty
    if typed and in_force and _same_test(typed, in_force):
        theirs = mine  # the rule as it is (its "try" link): no need to run it twice
    else:
        theirs = find_matches(store, in_force, since, ruleset, feeds) if in_force else empty
    # Capped, a rule was tried on the newest items only: compare what both were tried on.
    reached = max((f.reached for f in (mine, theirs) if f.reached is not None), default=None)
    if reached is not None:
        mine, theirs = _since(mine, reached), _since(theirs, reached)
    reached_time = reached[0] if reached is not None else None
    groups = {
        "added": [i for i in mine.matches if i not in theirs.matches],
        "removed": [i for i in theirs.matches if i not in mine.matches],
        "both": [i for i in mine.matches if i in theirs.matches],
    }
    newest = {
        name: sorted(ids, key=lambda i: _order(mine, theirs, i), reverse=True)[:SHOWN]
        for name, ids in groups.items()
    }
    stored = {s.id: s for s in store.get_items([i for ids in newest.values() for i in ids])}
    shown = {
        name: tuple(
            _shown(stored[i], (theirs if name == "removed" else mine).matches[i][0])
            for i in ids
            if i in stored
        )
        for name, ids in newest.items()
    }
    return Trial(
        days=days,
        window=count_window(store, since),
        added=shown["added"],
        removed=shown["removed"],
        both=shown["both"],
        counts={name: len(ids) for name, ids in groups.items()},
        capped=mine.capped or theirs.capped,
        reached=reached_time,
        seconds=time.perf_counter() - started,
    )


def _same_test(one: Rule, other: Rule) -> bool:
    """Whether two rules match the same items: what matching reads is the same."""
    return (one.tree, one.score, one.feeds) == (other.tree, other.score, other.feeds)


def _since(found: Found, reached: tuple[datetime, int]) -> Found:
    kept = {i: m for i, m in found.matches.items() if (m[1].published, i) >= reached}
    return dataclasses.replace(found, matches=kept)


def _order(mine: Found, theirs: Found, item_id: int) -> tuple[datetime, int]:
    text = (mine.matches.get(item_id) or theirs.matches[item_id])[1]
    return text.published, item_id


def _shown(stored: StoredItem, match: Match) -> Shown:
    item = stored.item
    spans = {field: [(h.start, h.end) for h in match.hits if h.field == field] for field in
             ("title", "summary")}  # fmt: skip
    return Shown(
        stored,
        marked(item.title, spans["title"]),
        marked(item.summary, spans["summary"], width=320),
        match.rule_id,
    )


def marked(text: str, spans: list[tuple[int, int]], width: int | None = None) -> Segments:
    """`text` cut into pieces, the hits (offsets in the folded text) flagged True.

    Folding keeps lengths for nearly all news text; where it does not (a ligature, `ß`), the
    offsets cannot be mapped back, so the folded text is shown. A long text is cut to about
    `width` characters around its first hit.
    """
    folded = fold(text)
    source = text if len(folded) == len(text) else folded
    start, end = 0, len(source)
    if width is not None and len(source) > width:
        first = min((s for s, _ in spans), default=0)
        start = max(0, min(first - width // 3, len(source) - width))
        end = start + width
    pieces: Segments = [("…", False)] if start else []
    last = start
    for hit_start, hit_end in sorted(set(spans)):
        hit_start, hit_end = max(hit_start, last), min(hit_end, end)
        if hit_start >= hit_end:
            continue
        pieces += [(source[last:hit_start], False), (source[hit_start:hit_end], True)]
        last = hit_end
    pieces.append((source[last:end], False))
    if end < len(source):
        pieces.append(("…", False))
    return [(piece, hit) for piece, hit in pieces if piece]

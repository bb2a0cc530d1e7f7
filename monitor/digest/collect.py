"""A route's digest as of now: which pending matches it takes, and what it claims.

`collect` reads the route's pending matches (never history: items that were old news when
monitor first saw them), keeps those the route takes (its severity, rules, labels, regions,
and `max_age`), and splits the items three ways:

- listed in full, one entry per story (`storyfirst`: a story's new items go out together,
  and a story the route already has is not sent as new): the most severe first, then the
  newest, up to `max_items` entries;
- referred to in one line: items the receiver already got in full from another route
  (`repeat: reference`, the default), also up to `max_items`;
- left for the route's next digest: the rest. They are counted in the digest and stay
  pending, so nothing is ever dropped for lack of room.

References alone never make a digest (a message saying only "you already have these" is
noise): they wait for the route's next digest with news.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.digest.arrange import entry_order
from monitor.digest.storyfirst import StoryEntry, by_story, feed_title
from monitor.digest.storyview import StoryReport
from monitor.match.rule import Rule, held
from monitor.models import (
    Digest,
    DigestEntry,
    Feed,
    Receiver,
    Route,
    RuleRef,
    SentBefore,
    StoredItem,
)
from monitor.store import Store
from monitor.store.outbox import Claims, Outbox, PendingMatch
from monitor.store.storysent import StorySent

# A new route also takes the matches of the day before it was first seen, so a route set up
# right after a poll still delivers that poll's alerts, without flooding anyone with history.
CATCH_UP = timedelta(hours=24)


@dataclass(frozen=True)
class Collected:
    """A digest ready to freeze, and the items it claims or leaves for later."""

    digest: Digest
    claims: Claims


def rule_ref(rules: Mapping[str, Rule], match: PendingMatch) -> RuleRef:
    rule = rules.get(match.rule_id)
    if rule is None:  # deleted since it matched: still delivered, never silently dropped
        return RuleRef(match.rule_id, match.rule_id, "medium", terms=match.terms)
    return RuleRef(rule.id, rule.title, rule.severity, dict(rule.labels), match.terms)


def accepts(route: Route, ref: RuleRef) -> bool:
    """Whether a route takes matches of this rule (its severity, rule and label criteria)."""
    m = route.match
    if m.severity and ref.severity not in m.severity:
        return False
    if m.rules and ref.id not in m.rules:
        return False
    return all(ref.labels.get(k) == v for k, v in m.labels.items())


def in_regions(route: Route, stored: StoredItem) -> bool:
    wanted = route.match.regions
    return not wanted or bool(set(wanted) & set(stored.item.regions))


def fresh(route: Route, stored: StoredItem, now: datetime) -> bool:
    """Whether the item is recent enough for the route (`max_age`, counted from now)."""
    return route.max_age is None or stored.item.published >= now - route.max_age


def collect(
    store: Store,
    route: Route,
    receiver: Receiver,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
    *,
    cover: bool = False,
) -> Collected | None:
    """The route's digest as of `now`, or None when there is nothing new (and no send_empty).
    One entry per story (`storyfirst`). With `cover`, the new reports of stories the route
    already has are claimed as covered now (`freeze_route` asks; a preview does not)."""
    if route.match.surges_only:  # it takes surge alerts (`digest.surges`), never a digest
        return None
    outbox = Outbox(store)
    pending = outbox.pending(route.id, outbox.route_start(route.id, now) - CATCH_UP)
    # A muted rule's matches stay pending: the route delivers them once the mute ends.
    pending = [m for m in pending if not held(rules.get(m.rule_id), now, route.timezone)]
    refs = _accepted(route, rules, pending)
    wanted = [s for s in store.get_items(list(refs)) if in_regions(route, s)]
    items = [s for s in wanted if fresh(route, s, now)]
    entries = sorted((_entry(s, refs[s.id], feeds) for s in items), key=entry_order)
    sent = outbox.sent_to(receiver.id, [e.item_id for e in entries]) if _refers(route) else {}
    new = [e for e in entries if e.item_id not in sent]
    again = [
        SentBefore(e, sent[e.item_id].sent, sent[e.item_id].digest_id)
        for e in entries
        if e.item_id in sent
    ]
    stories = by_story(store, route, new, feeds, now)
    if cover:
        StorySent(store).cover(route.id, stories.covered)
    if not stories.entries and not route.send_empty:
        return None
    ordered = sorted(stories.entries, key=lambda s: entry_order(s.entry))
    return _packed(route, receiver, now, ordered, again)


def _packed(
    route: Route,
    receiver: Receiver,
    now: datetime,
    ordered: Sequence[StoryEntry],
    again: Sequence[SentBefore],
) -> Collected:
    """The digest of the first `max_items` entries (and references); the rest's items are
    counted and left pending."""
    listed, referred = ordered[: route.max_items], again[: route.max_items]
    rest = [i for s in ordered[route.max_items :] for i in s.claims]
    rest += [s.entry.item_id for s in again[route.max_items :]]
    published = [r.published for s in listed for r in _claimed_reports(s)]
    digest = Digest(
        id=f"{now:%Y%m%dT%H%M%SZ}-{route.id}-{uuid.uuid4().hex[:8]}",
        route=route,
        receiver=receiver,
        created=now,
        window_start=min(published, default=None),
        window_end=max(published, default=now),
        entries=tuple(s.entry for s in listed),
        truncated=len(rest),
        already=tuple(referred),
    )
    claims = Claims(
        listed=tuple(i for s in listed for i in s.claims),
        referred=tuple(s.entry.item_id for s in referred),
        left_out=tuple(rest),
        stories=tuple(s.sent for s in listed if s.sent is not None),
    )
    return Collected(digest, claims)


def _claimed_reports(story: StoryEntry) -> list[StoryReport]:
    """The reports of the route's new items in the entry: the digest's window spans them."""
    reports = story.entry.story.reports if story.entry.story else ()
    return [r for r in reports if r.item_id in story.claims]


def _refers(route: Route) -> bool:
    return route.repeat != "full"


def _accepted(
    route: Route, rules: Mapping[str, Rule], pending: Sequence[PendingMatch]
) -> dict[int, list[RuleRef]]:
    """The rules the route takes, per item (items without one are left out)."""
    by_item: dict[int, list[RuleRef]] = {}
    for match in pending:
        ref = rule_ref(rules, match)
        if accepts(route, ref):
            by_item.setdefault(match.item_id, []).append(ref)
    return by_item


def _entry(stored: StoredItem, refs: Sequence[RuleRef], feeds: Mapping[str, Feed]) -> DigestEntry:
    title = feed_title(feeds, stored.item.feed_id)
    return DigestEntry(item_id=stored.id, item=stored.item, feed_title=title, rules=tuple(refs))

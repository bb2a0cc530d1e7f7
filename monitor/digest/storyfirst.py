"""One digest entry per stored story, not per item: what `collect` lists of a route's news.

A route's new items are grouped by their stored story (an item without one, stored before
stories existed, is a story of its own). Each story becomes one entry:

- its headline is the first report in the route's `languages:` preference (the earliest
  report when the route has none, or none of the story's reports is in one of them);
- it carries every report of the story (`DigestStory`), oldest first, so a reader sees
  "reported by 5 outlets in en, ja, zh, ko" with each outlet's title and link, and the
  rules of all the route's new items of the story (terms merged per rule), so under
  `group_by: rule` it stands under its highest-severity rule;
- it claims the route's new items of the story: listing the story delivers them all.

A story the route was already sent (`story_sent`) is not sent again as new. With `updates:
true` on the route, a story that grew since (a new outlet, a new language, a higher severity)
comes back as a short update entry naming what is new; otherwise its new items are covered:
claimed for the route without a message (`StorySent.cover`), so they never pend again.

An item the poll stored but has not linked yet (the poll links a cycle's items at its end)
waits for its story, at most `LINK_WAIT`: if linking is late (a feed of the cycle stalls) or
fails, it goes out on its own rather than late or not at all. A story some of whose reports
reached the route that way (or before an analyst merged two stories) counts as sent to the
route, with the outlets and languages of those reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.digest.storyview import DigestStory, StoryReport, StoryUpdate, primary
from monitor.models import SEVERITIES, DigestEntry, Feed, Route, RuleRef, StoredItem
from monitor.store import Store
from monitor.store.storysent import SentStory, StorySent

# Long enough for a poll cycle to store its feeds and link them; short enough that an
# immediate alert still leaves within moments when one feed of the cycle stalls.
LINK_WAIT = timedelta(seconds=10)


@dataclass(frozen=True)
class StoryEntry:
    """An entry to list, the route's item ids it claims, and what the route will then have
    been sent of its story (None for an item without a stored story)."""

    entry: DigestEntry
    claims: tuple[int, ...]
    sent: SentStory | None


@dataclass(frozen=True)
class Stories:
    entries: list[StoryEntry]
    covered: list[tuple[int, str]]  # (item id, digest id of the story's last send)


def feed_title(feeds: Mapping[str, Feed], feed_id: str) -> str:
    """A source by its title in feeds.yaml; one without (or removed since) by its id."""
    feed = feeds.get(feed_id)
    return (feed.title if feed else None) or feed_id


def by_story(
    store: Store,
    route: Route,
    entries: Sequence[DigestEntry],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> Stories:
    """The route's new entries (one per item) as story entries (see the module docstring)."""
    story_of = store.item_stories(e.item_id for e in entries)
    records = StorySent(store)
    waiting = _waiting(records, entries, story_of, now)  # they stay pending for now
    groups, solo = _grouped([e for e in entries if e.item_id not in waiting], story_of)
    members = store.story_members(groups)
    sent = records.sent(route.id, groups)
    delivered = records.delivered(route.id, [s.id for sid in groups for s in members.get(sid, [])])
    out = Stories([], [])
    for sid, group in groups.items():
        stored = members.get(sid) or [_stored(e) for e in group]
        before = sent.get(sid) or _delivered_before(sid, stored, delivered, group)
        _add(out, route, sid, group, stored, before, feeds)
    for entry in solo:
        _add(out, route, None, [entry], [_stored(entry)], None, feeds)
    return out


def _grouped(
    entries: Sequence[DigestEntry], story_of: Mapping[int, int]
) -> tuple[dict[int, list[DigestEntry]], list[DigestEntry]]:
    """Entries by story id, and those without a stored story (each a story of its own)."""
    groups: dict[int, list[DigestEntry]] = {}
    solo = []
    for entry in entries:
        sid = story_of.get(entry.item_id)
        if sid is None:
            solo.append(entry)
        else:
            groups.setdefault(sid, []).append(entry)
    return groups, solo


def _waiting(
    records: StorySent, entries: Sequence[DigestEntry], story_of: Mapping[int, int], now: datetime
) -> set[int]:
    unlinked = records.unlinked(e.item_id for e in entries if e.item_id not in story_of)
    return {
        e.item_id for e in entries if e.item_id in unlinked and now - e.item.first_seen < LINK_WAIT
    }


def _delivered_before(
    sid: int, stored: Sequence[StoredItem], delivered: Mapping[int, str], group: list[DigestEntry]
) -> SentStory | None:
    """The story as the route had it from reports delivered on their own (before they were
    linked to it): None when it had none. Their severity is not known: the new one counts."""
    had = [s for s in stored if s.id in delivered]
    if not had:
        return None
    view = DigestStory(sid, tuple(_report(s, {}) for s in had))
    severity = max((r.severity for r in merge_rules(group)), key=_rank, default="medium")
    return SentStory(sid, view.outlets, view.languages, severity, delivered[had[-1].id])


def _stored(entry: DigestEntry) -> StoredItem:
    return StoredItem(entry.item_id, entry.item)


def _add(
    out: Stories,
    route: Route,
    sid: int | None,
    group: list[DigestEntry],
    stored: list[StoredItem],
    before: SentStory | None,
    feeds: Mapping[str, Feed],
) -> None:
    story = DigestStory(sid, tuple(_report(s, feeds) for s in stored))
    rules = merge_rules(group)
    severity = max((r.severity for r in rules), key=_rank, default="medium")
    claims = tuple(e.item_id for e in group)
    if before is not None:
        update = _growth(story, severity, before)
        if update is None or not route.updates:
            out.covered.extend((item_id, before.digest_id) for item_id in claims)
            return
        story = replace(story, update=update)
    head = headline(stored, route.languages)
    others = [r for r in story.reports if r.item_id != head.id]
    entry = DigestEntry(
        item_id=head.id,
        item=head.item,
        feed_title=feed_title(feeds, head.item.feed_id),
        rules=rules,
        also=tuple((r.outlet_title, r.link) for r in others),
        story=story,
    )
    out.entries.append(StoryEntry(entry, claims, _snapshot(sid, story, severity, before)))


def headline(stored: Sequence[StoredItem], languages: Sequence[str]) -> StoredItem:
    """The first report (oldest first) in the first of `languages` the story has; else the
    earliest report. A preference `zh` takes `zh-tw` too; `zh-tw` takes only `zh-tw`."""
    for lang in languages:
        for report in stored:
            have = (report.item.lang or "").lower()
            if have == lang or (primary(have) == lang and "-" not in lang):
                return report
    return stored[0]


def _report(stored: StoredItem, feeds: Mapping[str, Feed]) -> StoryReport:
    item = stored.item
    return StoryReport(
        item_id=stored.id,
        outlet=item.feed_id,
        outlet_title=feed_title(feeds, item.feed_id),
        lang=item.lang,
        title=item.title,
        link=item.link,
        published=item.published,
    )


def _growth(story: DigestStory, severity: str, before: SentStory) -> StoryUpdate | None:
    """What the story gained since `before`; None when nothing (a new report from an outlet
    and in a language already sent, at no higher severity)."""
    outlets = tuple(o for o in story.outlets if o not in before.outlets)
    languages = tuple(lang for lang in story.languages if lang not in before.languages)
    rose = _rank(severity) > _rank(before.severity)
    if not (outlets or languages or rose):
        return None
    return StoryUpdate(outlets, languages, before.severity if rose else None)


def _snapshot(
    sid: int | None, story: DigestStory, severity: str, before: SentStory | None
) -> SentStory | None:
    if sid is None:
        return None
    if before is not None:
        severity = max(severity, before.severity, key=_rank)
    outlets = (*(before.outlets if before else ()), *story.outlets)
    languages = (*(before.languages if before else ()), *story.languages)
    return SentStory(sid, tuple(dict.fromkeys(outlets)), tuple(dict.fromkeys(languages)), severity)


def merge_rules(group: Sequence[DigestEntry]) -> tuple[RuleRef, ...]:
    """The rules of all the entries, in order of first appearance; a rule's terms merged."""
    merged: dict[str, RuleRef] = {}
    for entry in group:
        for rule in entry.rules:
            known = merged.get(rule.id)
            terms = rule.terms if known is None else (*known.terms, *rule.terms)
            merged[rule.id] = replace(known or rule, terms=tuple(dict.fromkeys(terms)))
    return tuple(merged.values())


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("medium")

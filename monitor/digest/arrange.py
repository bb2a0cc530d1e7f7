"""Arrange a digest for reading: one entry per story, grouped as the route asks, sorted.

`arrange` applies, in order:

1. One entry per story: `collect` made them from the stored stories (`storyfirst`), so
   nothing is merged here (text similarity once joined look-alike events and hid a distinct
   development under another's headline).
2. Grouping by `route.group_by`: each entry appears in exactly ONE group, so a digest never
   shows the same story twice: under its highest-severity rule (`rule`; ties by rule id), its
   first region (`region`: the item's regions keep the tagger's order; none -> "no region"),
   its severity (`severity`), its own story (`story`, keyed by its headline's item id).
   Several keys combine (`[rule, region]` -> one group per rule and region pair); no key
   puts everything in one group.
3. Sorting: entries by severity (critical first), then time (newest first), then item id;
   groups by their first entry the same way, then by key.

`subject` summarises a digest in one bounded line: the count of entries (stories, as the
group headings count them; updates of stories sent before counted apart) and, for up to
`HEADLINES` entries, their headlines (an update's with what is new), else the top topics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.digest.storyview import counted, update_short
from monitor.models import SEVERITIES, Digest, DigestEntry, RuleRef

SUBJECT_MAX = 120  # characters: mail clients cut subjects near here anyway
HEADLINES = 3  # a digest of this many entries or fewer is named by its headlines
PREFIX = "[monitor]"
GROUP_KEYS = ("rule", "region", "severity", "story")


@dataclass(frozen=True)
class Group:
    """One heading of a digest and its entries, in reading order."""

    key: str  # e.g. "rule:taiwan-strait-military", "region:TW/severity:high", "all"
    title: str
    entries: tuple[DigestEntry, ...]


def arrange(digest: Digest) -> list[Group]:
    """The digest's entries as groups to show (see the module docstring)."""
    groups: dict[str, tuple[str, list[DigestEntry]]] = {}
    for entry in digest.entries:
        key, title = _group_of(entry, digest.route.group_by)
        groups.setdefault(key, (title, []))[1].append(entry)
    built = [Group(k, t, tuple(sorted(es, key=entry_order))) for k, (t, es) in groups.items()]
    return sorted(built, key=lambda g: (*entry_order(g.entries[0]), g.key))


def entry_order(entry: DigestEntry) -> tuple[int, float, int]:
    """Sort key: severity (critical first), then time (newest first), then item id."""
    return (-SEVERITIES.index(entry.severity), -entry.item.published.timestamp(), entry.item_id)


def top_rule(entry: DigestEntry) -> RuleRef | None:
    """The entry's highest-severity rule (ties by rule id), or None when it has none."""
    return min(entry.rules, key=lambda r: (-_rank(r.severity), r.id), default=None)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("medium")


def _group_of(entry: DigestEntry, group_by: Sequence[str]) -> tuple[str, str]:
    parts = [_part(entry, name) for name in group_by if name in GROUP_KEYS]
    if not parts:
        return "all", "All alerts"
    return "/".join(k for k, _ in parts), " · ".join(t for _, t in parts)


def _part(entry: DigestEntry, name: str) -> tuple[str, str]:
    if name == "rule":
        rule = top_rule(entry)
        return ("rule:-", "Other") if rule is None else (f"rule:{rule.id}", rule.title)
    if name == "region":
        regions = entry.item.regions
        return (f"region:{regions[0]}", regions[0]) if regions else ("region:-", "No region")
    if name == "severity":
        return f"severity:{entry.severity}", entry.severity.capitalize()
    return f"story:{entry.item_id}", entry.item.title


def subject(digest: Digest) -> str:
    """`[monitor] 2 alerts: PLA drills near Kinmen (critical); Quake off Aomori` for a few
    entries, `[monitor] 12 alerts: Taiwan Strait military pressure (4, critical), ...` for
    more: the count and the top topics, most severe then most frequent first. Entries are
    stories, as the group headings count them; updates of stories sent before are counted
    apart (`1 alert, 1 update: ...; Kinmen drills (update: +1 outlet, +ko)`). One line
    within `SUBJECT_MAX`."""
    entries = sorted(digest.entries, key=entry_order)
    count = len(entries)
    if not count:
        return f"{PREFIX} no new alerts"
    head = f"{PREFIX} {count_text(entries)}"
    if count <= HEADLINES:
        return _fit(head, [_headline(e) for e in entries], "; ")
    topics = _topics(entries)
    return _fit(head, [_topic_text(_line(title), n, sev) for title, n, sev in topics], ", ")


def count_text(entries: Sequence[DigestEntry]) -> str:
    """`3 alerts`, `1 alert, 1 update`, `2 updates`: entries, updates counted apart."""
    updates = sum(1 for e in entries if is_update(e))
    parts = [counted(len(entries) - updates, "alert")] if len(entries) > updates else []
    return ", ".join([*parts, *([counted(updates, "update")] if updates else [])])


def is_update(entry: DigestEntry) -> bool:
    """Whether the entry is an update of a story the route was sent before."""
    return entry.story is not None and entry.story.update is not None


def _headline(entry: DigestEntry) -> str:
    if entry.story is not None and entry.story.update is not None:
        return f"{_line(entry.item.title)} ({update_short(entry.story, entry.severity)})"
    return _loud(_line(entry.item.title), entry.severity)


def _line(text: str) -> str:
    return " ".join(text.split())  # a subject is one line, whatever a title holds


def _loud(text: str, severity: str) -> str:
    # Only the severities that should catch the eye are spelled out in a subject.
    return f"{text} ({severity})" if severity in ("high", "critical") else text


def _topics(entries: Sequence[DigestEntry]) -> list[tuple[str, int, str]]:
    """(rule title, entries, severity) per rule, each entry counted under its top rule (as
    `group_by: [rule]` files it, so the counts agree with those headings)."""
    counts: Counter[str] = Counter()
    about: dict[str, tuple[str, str]] = {}  # rule id -> (title, severity)
    for entry in entries:
        rule = top_rule(entry)
        key = rule.id if rule else "-"
        counts[key] += 1
        about[key] = (rule.title, rule.severity) if rule else ("Other", "medium")
    ranked = sorted(counts, key=lambda k: (-_rank(about[k][1]), -counts[k], about[k][0], k))
    return [(about[k][0], counts[k], about[k][1]) for k in ranked]


def _topic_text(title: str, count: int, severity: str) -> str:
    # As `_loud`: only high and critical are spelled out.
    loud = severity in ("high", "critical")
    return f"{title} ({count}, {severity})" if loud else f"{title} ({count})"


def _fit(head: str, topics: list[str], separator: str) -> str:
    """`head: topic, topic...` with as many topics as fit in `SUBJECT_MAX`; a single topic
    too long to fit is cut with an ellipsis."""
    text = f"{head}: "
    for i, topic in enumerate(topics):
        more = " ..." if i + 1 < len(topics) else ""
        candidate = text + (separator if i else "") + topic
        if len(candidate + more) > SUBJECT_MAX:
            if i == 0:
                return candidate[: SUBJECT_MAX - 1] + "…"
            return text + " ..."
        text = candidate
    return text

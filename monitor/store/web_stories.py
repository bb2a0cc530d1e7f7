"""What the console's stories page reads: stories filtered every way the page offers (surging
ones first), the stories that surged, and the hourly matches its chart draws.

Read-only, and written for a database of 100,000 items: every list is taken in `last_seen`
order from its index and stops at the page's size, the filters on a story's aggregates
(regions, entities, languages, outlets) read the story's own JSON, never its reports, and the
chart counts one week of matches from the time indexes. The costly case is a filter that few
stories pass (a rare region or rule over 30 days): the scan then reads the whole window.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.models import StoryRow
from monitor.store.core import Store
from monitor.store.rows import _ts
from monitor.store.stories import _story
from monitor.store.storyrows import json_values


@dataclass(frozen=True)
class StoryFilter:
    """The page's filters, all optional and combined with AND. `rules`: a report of the story
    matched one of these rules (the rule filter, narrowed by the severity filter)."""

    since: datetime | None = None
    rules: tuple[str, ...] | None = None
    region: str | None = None
    entity: str | None = None
    language: str | None = None  # a primary subtag (`zh`) also finds `zh-tw`
    feed: str | None = None


def _where(wanted: StoryFilter, pg: bool) -> tuple[str, list[Any]]:
    where, values = ["TRUE"], []
    if wanted.since is not None:
        where.append("s.last_seen >= ?")
        values.append(_ts(wanted.since))
    # Each test of a JSON list starts with a plain search for the quoted value, which turns
    # most stories away at a fraction of what reading the list costs (a filter that few
    # stories pass reads the whole window: ~60 ms for 48,000 stories without it).
    find = "strpos({}, ?) > 0" if pg else "instr({}, ?)"
    if wanted.region is not None:
        code = wanted.region.upper()
        where.append(
            f"{find.format('upper(s.regions)')} AND EXISTS (SELECT 1 FROM"
            f" {json_values('s.regions', pg)} WHERE upper(value) = ?)"
        )
        values += [_quoted(code), code]
    if wanted.entity is not None:
        where.append(
            f"{find.format('s.entities')} AND EXISTS (SELECT 1 FROM"
            f" {json_values('s.entities', pg)} WHERE value = ?)"
        )
        values += [_quoted(wanted.entity), wanted.entity]
    if wanted.language is not None:
        lang = wanted.language.lower()
        where.append(
            f"{find.format('lower(s.languages)')} AND EXISTS (SELECT 1 FROM"
            f" {json_values('s.languages', pg)} WHERE lower(value) = ? OR lower(value) LIKE ?)"
        )
        values += [_quoted(lang)[:-1], lang, f"{lang}-%"]  # `"zh` finds `"zh"` and `"zh-tw"`
    if wanted.feed is not None:
        where.append(
            f"{find.format('s.outlets')} AND EXISTS (SELECT 1 FROM"
            f" {json_values('s.outlets', pg)} WHERE value = ?)"
        )
        values += [_quoted(wanted.feed), wanted.feed]
    if wanted.rules is not None:
        # As `Store.find_stories` tells a rule's stories, so the CLI and the console agree.
        # Last: it reads the story's reports, the filters above only the story's own row.
        where.append(
            "EXISTS (SELECT 1 FROM story_links AS l JOIN matches AS m ON m.item_id = l.item_id"
            " WHERE l.story_id = s.id AND m.rule_id IN (SELECT value FROM json_each(?)))"
        )
        values.append(json.dumps(list(wanted.rules)))
    return " AND ".join(where), values


def _quoted(value: str) -> str:
    """`"KP"`: the value as it stands in a story's JSON lists."""
    return json.dumps(value, ensure_ascii=False)


def find_page(
    store: Store, wanted: StoryFilter, surging: Collection[int], offset: int, limit: int
) -> list[StoryRow]:
    """One page of the stories that pass the filters: the surging ones first, then the rest;
    each part latest report first. Asks for `limit` rows; pass one more to learn whether
    another page follows."""
    where, values = _where(wanted, store.backend == "postgresql")
    ids = json.dumps(sorted(surging))
    order = "ORDER BY s.last_seen DESC, s.id DESC"
    # Surging stories are few (those of one day): all of them are read, then cut to the page.
    top = store._rows(
        f"SELECT s.* FROM stories AS s WHERE s.id IN (SELECT value FROM json_each(?))"
        f" AND {where} {order}",
        [ids, *values],
    )
    rows = top[offset : offset + limit]
    rest_offset = max(0, offset - len(top))
    more = limit - len(rows)
    if more > 0:
        rows += store._rows(
            f"SELECT s.* FROM stories AS s WHERE s.id NOT IN (SELECT value FROM json_each(?))"
            f" AND {where} {order} LIMIT ? OFFSET ?",
            [ids, *values, more, rest_offset],
        )
    return [_story(r) for r in rows]


def surging_stories(store: Store, since: datetime) -> dict[int, str]:
    """Story id -> why it surged (the latest story surge fired since `since`). A surge of a
    story merged since counts for the story it went into."""
    rows = store._rows(
        "SELECT key, why FROM surges WHERE kind = 'story' AND fired_at >= ? ORDER BY fired_at, id",
        (_ts(since),),
    )
    found: dict[int, str] = {}
    for row in rows:
        story = _story_key(row["key"])
        if story is not None:
            found[story] = row["why"]
    merged = store._rows(
        "SELECT story_id FROM story_merges WHERE story_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(found)),),
    )
    for row in merged:  # rare: one look-up per merged story
        old = int(row["story_id"])
        into = store.merged_into(old)
        if into is not None:
            found.setdefault(into, found.pop(old))
    return found


def _story_key(key: str) -> int | None:
    kind, _, value = key.partition(":")
    return int(value) if kind == "story" and value.isdigit() else None


def hourly_matches(
    store: Store, start: datetime, rule: str | None = None, region: str | None = None
) -> dict[str, int]:
    """Items matched per hour since `start` (`2026-12-03T14` -> count), by the time they were
    matched, as volume surges count them: each item once, history (old news) left out; only
    the rule's matches with `rule`, only items tagged with `region` with `region`.

    The costly query of the page: it reads every match of the week (measured: ~20 ms of CPU
    for the busiest region of 100,000 items over a month; ~100 ms when all 100,000 fall in
    the one week)."""
    # `INDEXED BY` is SQLite's; PostgreSQL's planner picks these indexes by itself.
    pg = store.backend == "postgresql"
    if rule is not None:  # one row per (item, rule): the rule's rows are its items
        sql = "SELECT item_id, matched_at AS at FROM matches"
        sql += "" if pg else " INDEXED BY matches_rule"
        sql += " WHERE rule_id = ? AND matched_at >= ? AND history = 0"
        values: list[Any] = [rule, _ts(start)]
    else:  # an item matched by several rules counts once, at its first match
        # By time (as surges.py does): the planner would rather read every match in item
        # order, which at 90 days of retention is thirteen weeks read for one.
        sql = "SELECT item_id, min(matched_at) AS at FROM matches"
        sql += "" if pg else " INDEXED BY matches_time"
        sql += " WHERE matched_at >= ? AND history = 0 GROUP BY item_id"
        values = [_ts(start)]
    if region is not None:
        sql = (
            f"SELECT m.at FROM ({sql}) AS m JOIN item_regions AS r"
            " ON r.item_id = m.item_id AND r.code = ?"
        )
        values.append(region.upper())
    rows = store._rows(
        f"SELECT substr(at, 1, 13) AS hour, count(*) AS n FROM ({sql}) AS h GROUP BY hour",
        values,
    )
    return {r["hour"]: int(r["n"]) for r in rows}


@dataclass(frozen=True)
class ChartSurge:
    key: str  # rule:ID or region:CODE
    fired_at: datetime
    why: str


def volume_surges(store: Store, start: datetime, keys: Sequence[str]) -> list[ChartSurge]:
    """The volume surges of these keys fired since `start`, oldest first."""
    rows = store._rows(
        "SELECT key, fired_at, why FROM surges WHERE kind = 'volume' AND fired_at >= ?"
        " AND key IN (SELECT value FROM json_each(?)) ORDER BY fired_at, id",
        (_ts(start), json.dumps(list(keys))),
    )
    return [ChartSurge(r["key"], datetime.fromisoformat(r["fired_at"]), r["why"]) for r in rows]


def feed_ids(store: Store) -> list[str]:
    """The feeds the database knows (for the feed filter's suggestions)."""
    # Sorted here: in code point order on both backends, whatever PostgreSQL's collation.
    return sorted(r["feed_id"] for r in store._rows("SELECT feed_id FROM feeds"))

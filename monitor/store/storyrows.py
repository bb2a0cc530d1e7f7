"""The mechanical half of `stories`: reading reports for the linker cheaply, and recomputing a
story's aggregates from its members.

Both run once per item at ingest, so they are written for speed (measured on a cold poll of
3,000 items: the generic row reader and one SQL aggregate per story cost ~13% of the poll;
these, ~3%). The aggregates follow `schema.STORY_AGGREGATES` (what the retention trigger
runs) exactly: outlets and languages in the order they first reported (ties by name), regions
and entities most named first (ties by name), the headline the first report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from monitor.models import EntityTag, Item, StoredItem
from monitor.store.pg import Conn

# What the linker reads of an item (`report_of`): everything but the HTML and the author.
LINKABLE = (
    "i.id, i.feed_id, i.guid, i.link, i.title, i.summary, i.lang, i.published, i.first_seen,"
    " i.content_hash, i.regions, i.entities"
)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def linkable(row: dict[str, Any]) -> StoredItem:
    """A row of `LINKABLE` as a stored item (`html` empty, `author` None: not read)."""
    item = Item(
        feed_id=row["feed_id"],
        guid=row["guid"],
        link=row["link"],
        title=row["title"],
        summary=row["summary"],
        html="",
        author=None,
        lang=row["lang"],
        published=_time(row["published"]),
        first_seen=_time(row["first_seen"]),
        content_hash=row["content_hash"],
        regions=tuple(json.loads(row["regions"])),
        entities=tuple(EntityTag(**tag) for tag in json.loads(row["entities"])),
    )
    return StoredItem(id=int(row["id"]), item=item)


def json_values(column: str, pg: bool) -> str:
    """A FROM item yielding a JSON list column's elements as `value` (text), per backend."""
    if pg:
        return f"json_array_elements_text({column}::json) AS j(value)"
    return f"json_each({column})"


_IN = "l.story_id IN (SELECT value FROM json_each(?))"
_MEMBERS = f"""SELECT l.story_id, i.id, i.feed_id, i.lang, i.published FROM story_links AS l
    JOIN items AS i ON i.id = l.item_id WHERE {_IN} ORDER BY i.published, i.id"""
_REGIONS = f"""SELECT l.story_id, r.code FROM story_links AS l
    JOIN item_regions AS r ON r.item_id = l.item_id WHERE {_IN}"""
_ENTITIES = f"""SELECT DISTINCT l.story_id, e.item_id, e.entity_id FROM story_links AS l
    JOIN item_entities AS e ON e.item_id = l.item_id WHERE {_IN}"""
_SET = """UPDATE stories SET reports = ?, first_seen = ?, last_seen = ?, outlets = ?,
    languages = ?, regions = ?, entities = ?, headline_item = ? WHERE id = ?"""


_encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps makes one a call


def _in_order(firsts: dict[str, str]) -> str:
    """Names by the time they first appeared, then by name."""
    if len(firsts) < 2:
        return _encode(list(firsts))
    return _encode(sorted(firsts, key=lambda name: (firsts[name], name)))


def _most_named(counts: dict[str, int]) -> str:
    if len(counts) < 2:
        return _encode(list(counts))
    return _encode(sorted(counts, key=lambda name: (-counts[name], name)))


def aggregate(conn: Conn, stories: Iterable[int]) -> None:
    """Recompute the aggregates of these stories from their members (in `conn`'s transaction)."""
    ids = json.dumps(sorted(set(stories)))
    members: dict[int, list[tuple[int, str, str | None, str]]] = {}
    for story, item, feed, lang, published in conn.execute(_MEMBERS, (ids,)):
        members.setdefault(story, []).append((item, feed, lang, published))
    regions: dict[int, dict[str, int]] = {}
    for story, code in conn.execute(_REGIONS, (ids,)):
        named = regions.setdefault(story, {})
        named[code] = named.get(code, 0) + 1
    entities: dict[int, dict[str, int]] = {}
    for story, _, entity in conn.execute(_ENTITIES, (ids,)):
        named = entities.setdefault(story, {})
        named[entity] = named.get(entity, 0) + 1
    rows = []
    for story, reports in members.items():
        outlets: dict[str, str] = {}
        langs: dict[str, str] = {}
        for _, feed, lang, published in reports:
            outlets.setdefault(feed, published)
            if lang is not None:
                langs.setdefault(lang, published)
        rows.append(
            (
                len(reports),
                reports[0][3],
                reports[-1][3],
                _in_order(outlets),
                _in_order(langs),
                _most_named(regions.get(story, {})),
                _most_named(entities.get(story, {})),
                reports[0][0],
                story,
            )
        )
    conn.executemany(_SET, rows)

"""The mechanical half of `stories`: reading reports for the linker cheaply, and keeping a
story's aggregates: new reports folded into its `Tally` (`add_members`), or everything
recomputed from its members (`aggregate`) when it has none.

Both run once per item at ingest, so they are written for speed (measured on a cold poll of
3,000 items: the generic row reader and one SQL aggregate per story cost ~13% of the poll;
these, ~3%). The aggregates follow `storysql.STORY_AGGREGATES` (what the retention trigger
runs) exactly: outlets and languages in the order they first reported (ties by name), regions
and entities most named first (ties by name), the headline the first report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
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


def linkables(rows: Sequence[Sequence[Any]]) -> list[StoredItem]:
    """Rows of `LINKABLE` as stored items (`html` empty, `author` None: not read).

    The JSON columns are read by `_parsed`, the tags made by `_tag`."""
    regions = _parsed([row[10] for row in rows], tuple)
    entities = _parsed([row[11] for row in rows], _tags)
    times: dict[str, datetime] = {}  # a feed's items share times: each parsed once
    out = []
    for row, codes, tags in zip(rows, regions, entities, strict=True):
        item = Item(
            feed_id=row[1],
            guid=row[2],
            link=row[3],
            title=row[4],
            summary=row[5],
            html="",
            author=None,
            lang=row[6],
            published=times.get(row[7]) or times.setdefault(row[7], _time(row[7])),
            first_seen=times.get(row[8]) or times.setdefault(row[8], _time(row[8])),
            content_hash=row[9],
            regions=codes,
            entities=tags,
        )
        out.append(StoredItem(id=row[0], item=item))
    return out


def _parsed(texts: list[str], make: Callable[[Any], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each distinct JSON text made into a tuple once, all parsed in one call (a call each
    cost as much as the parsing); equal texts share their tuple (immutable: `[]`, a common
    set of regions), which also leaves the garbage collector fewer objects to walk."""
    distinct = list(dict.fromkeys(texts))
    made = map(make, json.loads("[" + ",".join(distinct) + "]"))
    values = dict(zip(distinct, made, strict=True))
    return [values[text] for text in texts]


def _tags(tags: list[dict[str, Any]]) -> tuple[EntityTag, ...]:
    return tuple(map(_tag, tags))


_TAG_FIELDS = frozenset(f.name for f in fields(EntityTag))


def _tag(tag: dict[str, Any]) -> EntityTag:
    """A tag from its JSON (`EntityTag.as_json`). When the keys are exactly its fields the
    dict becomes the tag's own, as unpickling does: a third of the cost of `EntityTag(**tag)`
    (~100,000 tags in a cold poll of the benchmark farm)."""
    if tag.keys() != _TAG_FIELDS:
        return EntityTag(**tag)  # a key missing or unknown: the constructor says which
    made = object.__new__(EntityTag)
    object.__setattr__(made, "__dict__", tag)
    return made


def json_values(column: str, pg: bool) -> str:
    """A FROM item yielding a JSON list column's elements as `value` (text), per backend."""
    if pg:
        return f"json_array_elements_text({column}::json) AS j(value)"
    return f"json_each({column})"


_IN = "l.story_id IN (SELECT value FROM json_each(?))"
_MEMBERS = f"""SELECT l.story_id, i.id, i.feed_id, i.lang, i.published FROM story_links AS l
    JOIN items AS i ON i.id = l.item_id WHERE {_IN}"""
_REGIONS = f"""SELECT l.story_id, r.code FROM story_links AS l
    JOIN item_regions AS r ON r.item_id = l.item_id WHERE {_IN}"""
_ENTITIES = f"""SELECT DISTINCT l.story_id, e.item_id, e.entity_id FROM story_links AS l
    JOIN item_entities AS e ON e.item_id = l.item_id WHERE {_IN}"""
# The same of the reports just linked (`_ITEMS`: their ids), regions and entities counted
# by SQL: ~150,000 rows a batch of 2,000 on the benchmark farm, a few dozen counted.
_ITEMS = "(SELECT value FROM json_each(?))"
_NEW_MEMBERS = f"SELECT id, feed_id, lang, published FROM items WHERE id IN {_ITEMS}"
_NEW_REGIONS = f"""SELECT l.story_id, r.code, count(*) FROM story_links AS l
    JOIN item_regions AS r ON r.item_id = l.item_id WHERE l.item_id IN {_ITEMS}
    GROUP BY l.story_id, r.code"""
_NEW_ENTITIES = f"""SELECT l.story_id, e.entity_id, count(DISTINCT e.item_id) FROM story_links AS l
    JOIN item_entities AS e ON e.item_id = l.item_id WHERE l.item_id IN {_ITEMS}
    GROUP BY l.story_id, e.entity_id"""
_TALLIES = f"SELECT story_id, tally FROM story_tallies WHERE story_id IN {_ITEMS}"
_PUT_TALLY = """INSERT INTO story_tallies (story_id, tally) VALUES (?, ?)
    ON CONFLICT (story_id) DO UPDATE SET tally = excluded.tally"""
_DROP_TALLIES = f"DELETE FROM story_tallies WHERE story_id IN {_ITEMS}"
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


@dataclass
class Tally:
    """What a story's aggregates are made of, kept in `story_tallies` so that new reports are
    folded in without reading the old ones: times are the stored ISO text (compared as text,
    as SQL does), `head` the first report as (published, item id)."""

    reports: int = 0
    head: tuple[str, int] = ("", 0)
    last: str = ""
    outlets: dict[str, str] = field(default_factory=dict)  # feed -> first published
    langs: dict[str, str] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)  # code -> reports naming it
    entities: dict[str, int] = field(default_factory=dict)

    def add(self, item: int, feed: str, lang: str | None, published: str) -> None:
        # In any order: a report older than the story's first (a late batch, a backlog)
        # moves its start, its headline and the order of its outlets.
        if not self.reports or (published, item) < self.head:
            self.head = (published, item)
        self.reports += 1
        self.last = max(self.last, published)
        if published < self.outlets.get(feed, "~"):  # "~" sorts after any time
            self.outlets[feed] = published
        if lang is not None and published < self.langs.get(lang, "~"):
            self.langs[lang] = published

    def row(self, story: int) -> tuple[Any, ...]:
        """The values of `_SET` (the same as `storysql.STORY_AGGREGATES` computes)."""
        return (
            self.reports,
            self.head[0],
            self.last,
            _in_order(self.outlets),
            _in_order(self.langs),
            _most_named(self.regions),
            _most_named(self.entities),
            self.head[1],
            story,
        )

    def dumps(self) -> str:
        parts = (self.reports, self.head, self.last, self.outlets, self.langs, self.regions)
        return _encode([*parts, self.entities])

    @classmethod
    def loads(cls, text: str) -> Tally:
        reports, head, last, outlets, langs, regions, entities = json.loads(text)
        return cls(reports, (head[0], head[1]), last, outlets, langs, regions, entities)


def _count(into: dict[str, int], name: str, n: int = 1) -> None:
    into[name] = into.get(name, 0) + n


def _save(conn: Conn, tallies: dict[int, Tally]) -> None:
    conn.executemany(_SET, [t.row(story) for story, t in tallies.items()])
    conn.executemany(_PUT_TALLY, [(story, t.dumps()) for story, t in tallies.items()])


def aggregate(conn: Conn, stories: Iterable[int]) -> None:
    """Recompute the aggregates of these stories from all their members (in `conn`'s
    transaction), and their tallies; an emptied story's tally goes."""
    ids = json.dumps(sorted(set(stories)))
    conn.execute(_DROP_TALLIES, (ids,))
    tallies: dict[int, Tally] = {}
    for story, item, feed, lang, published in conn.execute(_MEMBERS, (ids,)):
        tally = tallies.get(story)
        if tally is None:
            tally = tallies[story] = Tally()
        tally.add(item, feed, lang, published)
    for story, code in conn.execute(_REGIONS, (ids,)):
        _count(tallies[story].regions, code)
    for story, _, entity in conn.execute(_ENTITIES, (ids,)):
        _count(tallies[story].entities, entity)
    _save(conn, tallies)


def add_members(conn: Conn, members: dict[int, int], fresh: set[int]) -> None:
    """Fold reports just linked (item id -> story id, `fresh`: stories made in this
    transaction) into their stories' aggregates, reading only these reports. A story without
    a tally (made before tallies, or a report taken away since) is recomputed in full."""
    stories = json.dumps(sorted(set(members.values()) - fresh))
    tallies = {int(story): Tally.loads(text) for story, text in conn.execute(_TALLIES, (stories,))}
    tallies.update((story, Tally()) for story in fresh)
    items = json.dumps(sorted(item for item, story in members.items() if story in tallies))
    for item, feed, lang, published in conn.execute(_NEW_MEMBERS, (items,)):
        tallies[members[item]].add(item, feed, lang, published)
    for story, code, n in conn.execute(_NEW_REGIONS, (items,)):
        _count(tallies[story].regions, code, n)
    for story, entity, n in conn.execute(_NEW_ENTITIES, (items,)):
        _count(tallies[story].entities, entity, n)
    _save(conn, tallies)
    aggregate(conn, set(members.values()) - tallies.keys())

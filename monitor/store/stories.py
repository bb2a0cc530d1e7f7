"""Stories in the store: each item's story, why it is there, and the story's aggregates.

`StoryStore` is a base class of `Store` (its methods are `Store` methods) kept apart so that
`core` stays about items. Tables (migration m010): `stories` (aggregates), `story_links` (an
item's story, score, why, manual flag), `story_merges` (a merged story's new home) and
`story_pending` (items stored but not yet linked, queued by a trigger on `items`).

The linker decides; this module only records. New stories get provisional negative ids
from the caller (the linker must name a story before the store has made it) and
`save_links` gives them their real ids in the one transaction that stores the links.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from monitor.models import StoredItem, StoryRow
from monitor.store.pg import Conn, is_pg
from monitor.store.rows import _stored, _ts
from monitor.store.storyrows import LINKABLE, add_members, aggregate, json_values, linkables


@dataclass(frozen=True)
class NewLink:
    """A linker's decision for one pending item: `story` < 0 is a story to make."""

    item_id: int
    story: int
    score: float
    why: tuple[str, ...]


@dataclass(frozen=True)
class StoryLink:
    """One report of a story, as `monitor stories show` tells it."""

    stored: StoredItem
    score: float
    why: tuple[str, ...]
    started: bool  # the report that made the story (the linker found none to join)
    manual: bool
    linked_at: datetime


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _story(row: dict[str, Any]) -> StoryRow:
    return StoryRow(
        id=int(row["id"]),
        first_seen=_time(row["first_seen"]),
        last_seen=_time(row["last_seen"]),
        reports=int(row["reports"]),
        outlets=tuple(json.loads(row["outlets"])),
        languages=tuple(json.loads(row["languages"])),
        regions=tuple(json.loads(row["regions"])),
        entities=tuple(json.loads(row["entities"])),
        headline_item=int(row["headline_item"] or 0),
    )


def _json_list(texts: Sequence[str]) -> str:
    """`json.dumps(list(texts), ensure_ascii=False)` at a quarter of the cost (a link's `why`,
    30,000 of them in a cold poll of the benchmark farm)."""
    return "[" + ", ".join(map(encode_basestring, texts)) + "]"


def _ids(values: Iterable[int]) -> str:
    return json.dumps(sorted({int(v) for v in values}))


_IN = "(SELECT value FROM json_each(?))"
_MERGED = "SELECT into_id FROM story_merges WHERE story_id = ?"
# `why` with one more reason at the end (a JSON list as text), per backend (`is_pg`).
_APPEND_WHY = {
    False: "json_insert(why, '$[#]', ?)",
    True: "(why::jsonb || to_jsonb(?::text))::text",
}
# What the story links are now: how many, how many moved by hand, and the last hand move.
StoryToken = tuple[int, int, str | None]


class StoryStore:
    """The story methods of `Store` (it defines the three below)."""

    if TYPE_CHECKING:

        def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
        def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
        def _write(self) -> AbstractContextManager[Conn]: ...
        def _guard(self, action: str) -> AbstractContextManager[None]: ...
        @property
        def backend(self) -> str: ...

    # --- reading ----------------------------------------------------------------------------

    def item_stories(self, item_ids: Iterable[int]) -> dict[int, int]:
        """Item id -> story id; items without a story (stored before stories) are absent."""
        rows = self._rows(
            f"SELECT item_id, story_id FROM story_links WHERE item_id IN {_IN}", (_ids(item_ids),)
        )
        return {int(r["item_id"]): int(r["story_id"]) for r in rows}

    def story_members(self, story_ids: Iterable[int]) -> dict[int, list[StoredItem]]:
        """Each story's reports, oldest (published) first; unknown ids are absent."""
        rows = self._rows(
            "SELECT l.story_id AS story_id, i.* FROM story_links AS l JOIN items AS i"
            f" ON i.id = l.item_id WHERE l.story_id IN {_IN} ORDER BY i.published, i.id",
            (_ids(story_ids),),
        )
        out: dict[int, list[StoredItem]] = {}
        for row in rows:
            out.setdefault(int(row["story_id"]), []).append(_stored(row))
        return out

    def get_story(self, story_id: int) -> StoryRow | None:
        return self.get_stories([story_id]).get(story_id)

    def get_stories(self, story_ids: Iterable[int]) -> dict[int, StoryRow]:
        rows = self._rows(f"SELECT * FROM stories WHERE id IN {_IN}", (_ids(story_ids),))
        return {int(r["id"]): _story(r) for r in rows}

    def merged_into(self, story_id: int) -> int | None:
        """Where a merged story's reports went (following later merges), else None."""
        return _follow(lambda sid: [r["into_id"] for r in self._rows(_MERGED, (sid,))], story_id)

    def story_links(self, story_id: int) -> list[StoryLink]:
        """A story's reports oldest first, each with why it joined."""
        rows = self._rows(
            "SELECT l.score AS link_score, l.why AS link_why, l.manual AS link_manual,"
            " l.started AS link_started,"
            " l.linked_at AS link_at, i.* FROM story_links AS l JOIN items AS i"
            " ON i.id = l.item_id WHERE l.story_id = ? ORDER BY i.published, i.id",
            (story_id,),
        )
        return [
            StoryLink(
                stored=_stored(r),
                score=float(r["link_score"]),
                why=tuple(json.loads(r["link_why"])),
                started=bool(r["link_started"]),
                manual=bool(r["link_manual"]),
                linked_at=_time(r["link_at"]),
            )
            for r in rows
        ]

    def find_stories(
        self,
        since: datetime | None = None,
        rule_id: str | None = None,
        region: str | None = None,
        limit: int = 50,
    ) -> list[StoryRow]:
        """Stories whose last report is at or after `since`, latest first; with `rule_id`
        those a report of which the rule matched, with `region` those tagged with it."""
        where, values = ["TRUE"], []
        if since is not None:
            where.append("s.last_seen >= ?")
            values.append(_ts(since))
        if rule_id is not None:
            where.append(
                "EXISTS (SELECT 1 FROM story_links AS l JOIN matches AS m"
                " ON m.item_id = l.item_id WHERE l.story_id = s.id AND m.rule_id = ?)"
            )
            values.append(rule_id)
        if region is not None:
            regions = json_values("s.regions", self.backend == "postgresql")
            where.append(f"EXISTS (SELECT 1 FROM {regions} WHERE upper(value) = ?)")
            values.append(region.upper())
        sql = f"SELECT s.* FROM stories AS s WHERE {' AND '.join(where)}"
        rows = self._rows(f"{sql} ORDER BY s.last_seen DESC, s.id DESC LIMIT ?", [*values, limit])
        return [_story(r) for r in rows]

    def recent_reports(self, story_ids: Iterable[int], since: datetime) -> dict[int, int]:
        """How many reports of each story were published at or after `since`."""
        rows = self._rows(
            "SELECT l.story_id AS sid, count(*) AS n FROM story_links AS l JOIN items AS i"
            f" ON i.id = l.item_id WHERE l.story_id IN {_IN} AND i.published >= ?"
            " GROUP BY l.story_id",
            (_ids(story_ids), _ts(since)),
        )
        return {int(r["sid"]): int(r["n"]) for r in rows}

    def open_stories(self, since: datetime) -> list[tuple[int, StoredItem]]:
        """(story id, report) of the stories whose last report is at or after `since`,
        oldest report first: what a linker starting afresh needs to load (the items without
        their HTML and author, see `storyrows.linkables`)."""
        rows = self._tuples(
            f"SELECT {LINKABLE}, l.story_id FROM stories AS s"
            " JOIN story_links AS l ON l.story_id = s.id JOIN items AS i ON i.id = l.item_id"
            " WHERE s.last_seen >= ? ORDER BY i.published, i.id",
            (_ts(since),),
        )
        return [(int(r[-1]), s) for r, s in zip(rows, linkables(rows), strict=True)]

    def story_token(self) -> StoryToken:
        """Changes whenever links are added, deleted or moved by hand: a linker kept in memory
        is still right about the store while this stays what its own saves left."""
        # Counting all links walks the smallest index, the hand-moved ones their own (m015):
        # a scan of the table cost ~5 ms a call at 30,000 links.
        ((n, m, t),) = self._tuples(
            "SELECT (SELECT count(*) FROM story_links), count(*), max(linked_at)"
            " FROM story_links WHERE manual = 1"
        )
        return int(n), int(m), t

    def pending_count(self) -> int:
        """How many items wait to be linked to a story."""
        return int(self._rows("SELECT count(*) AS n FROM story_pending")[0]["n"])

    def pending_stories(self, limit: int = 10_000) -> list[StoredItem]:
        """Items stored but not yet linked to a story, in the order they were stored (without
        their HTML and author, see `storyrows.linkables`)."""
        rows = self._tuples(
            f"SELECT {LINKABLE} FROM story_pending AS p JOIN items AS i ON i.id = p.item_id"
            " ORDER BY p.item_id LIMIT ?",
            (limit,),
        )
        return linkables(rows)

    def pending_reads(self, ids: Sequence[int]) -> dict[int, str]:
        """What a parse worker read for linking of each of these pending items' text
        (`profile.packed_read`), by item id; an item without one is left out."""
        rows = self._tuples(
            f"SELECT item_id, read FROM story_pending WHERE item_id IN {_IN} AND read IS NOT NULL",
            (json.dumps(list(ids)),),
        )
        return dict(rows)

    # --- writing ----------------------------------------------------------------------------

    def save_links(self, links: Sequence[NewLink]) -> dict[int, int]:
        """Record the linker's decisions in one transaction; return provisional -> real id.

        An item no longer pending (linked meanwhile by another process, or deleted) is
        skipped; a story merged meanwhile is followed to where it went, and one gone (its
        reports all deleted) is made anew.
        """
        made: dict[int, int] = {}
        homes: dict[int, int] = {}  # the real story of each id named, made or checked once
        fresh: set[int] = set()  # the stories made here
        now = _ts(datetime.now(UTC))
        with self._guard("cannot write to"), self._write() as conn:
            # Taken off the queue first (the transaction is all or nothing): those that were on it.
            waiting = {
                item
                for (item,) in conn.execute(
                    f"DELETE FROM story_pending WHERE item_id IN {_IN} RETURNING item_id",
                    (json.dumps([link.item_id for link in links]),),
                )
            }
            rows, touched = [], set()
            for link in links:
                if link.item_id not in waiting:
                    continue
                waiting.discard(link.item_id)  # an item named twice is linked once
                if link.story not in homes:
                    before = len(made)
                    homes[link.story] = self._home(conn, link.story, made, now)
                    if len(made) > before:
                        fresh.add(homes[link.story])
                story = homes[link.story]
                started = int(story in fresh and story not in touched)  # a 0/1 column
                why = _json_list(link.why)
                rows.append((link.item_id, story, link.score, why, started, now))
                touched.add(story)
            conn.executemany(
                "INSERT INTO story_links (item_id, story_id, score, why, started, manual,"
                " linked_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                rows,
            )
            # Only the new reports are read: the stories' tallies hold the rest (storyrows).
            add_members(conn, {row[0]: row[1] for row in rows}, fresh)
        return made

    def _home(self, conn: Conn, story: int, made: dict[int, int], now: str | None) -> int:
        """The real story a decision names, made if it is new (or gone)."""
        if story < 0:
            made[story] = _new_story(conn, now)
            return made[story]
        if conn.execute("SELECT 1 FROM stories WHERE id = ?", (story,)).fetchone():
            return story
        # Read in this transaction: on PostgreSQL `_rows` would take a second connection of
        # the pool while this one holds the write lock (and see only what is committed).
        moved = _follow(lambda sid: [r[0] for r in conn.execute(_MERGED, (sid,))], story)
        alive = "SELECT 1 FROM stories WHERE id = ?"
        if moved is not None and conn.execute(alive, (moved,)).fetchone():
            return moved
        made[story] = _new_story(conn, now)
        return made[story]

    def split_item(self, item_id: int) -> tuple[int, int]:
        """Move an item out of its story into a story of its own, marked manual (the linker
        never moves it back); return (old story, new story). KeyError: no such linked item;
        ValueError: it is already alone in its story."""
        now = _ts(datetime.now(UTC))
        with self._guard("cannot write to"), self._write() as conn:
            row = conn.execute(
                "SELECT story_id FROM story_links WHERE item_id = ?", (item_id,)
            ).fetchone()
            if row is None:
                raise KeyError(item_id)
            old = int(row[0])
            (size,) = conn.execute(
                "SELECT count(*) FROM story_links WHERE story_id = ?", (old,)
            ).fetchone()
            if size == 1:
                raise ValueError(f"item {item_id} is already the only report of story {old}")
            new = _new_story(conn, now)
            conn.execute(
                "UPDATE story_links SET story_id = ?, score = 0, why = ?, started = 1,"
                " manual = 1, linked_at = ? WHERE item_id = ?",
                (new, json.dumps(["split by hand"]), now, item_id),
            )
            aggregate(conn, {new, old})
            _drop_if_empty(conn, old)
        return old, new

    def merge_stories(self, into: int, other: int) -> int:
        """Move every report of `other` into `into` (marked manual); `other` is gone and
        remembered as merged. Return how many reports moved. KeyError: an unknown story;
        ValueError: the same story twice."""
        if into == other:
            raise ValueError(f"story {into} cannot be merged into itself")
        now = _ts(datetime.now(UTC))
        with self._guard("cannot write to"), self._write() as conn:
            for story in (into, other):
                if not conn.execute("SELECT 1 FROM stories WHERE id = ?", (story,)).fetchone():
                    raise KeyError(story)
            # Each report keeps why it joined `other`, and says how it came to `into`.
            moved = conn.execute(
                "UPDATE story_links SET story_id = ?, manual = 1, started = 0,"
                f" why = {_APPEND_WHY[is_pg(conn)]}, linked_at = ? WHERE story_id = ?",
                (into, f"merged by hand from story {other}", now, other),
            ).rowcount
            conn.execute(
                "INSERT INTO story_merges (story_id, into_id, merged_at) VALUES (?, ?, ?)"
                " ON CONFLICT (story_id) DO UPDATE SET into_id = excluded.into_id,"
                " merged_at = excluded.merged_at",
                (other, into, now),
            )
            aggregate(conn, {into, other})  # `other`, now empty, loses its tally
            _drop_if_empty(conn, other)
        return int(moved)


def _follow(into: Callable[[int], list[Any]], story_id: int) -> int | None:
    """The end of a story's chain of merges (`into`: where one story went), else None."""
    target, seen = None, {story_id}
    while True:
        found = into(target or story_id)
        if not found or int(found[0]) in seen:
            return target
        target = int(found[0])
        seen.add(target)


def _new_story(conn: Conn, now: str | None) -> int:
    # The times are placeholders until `aggregate` sets them from the members. The id comes
    # from the database (AUTOINCREMENT, an identity on PostgreSQL): never one given before.
    (story,) = conn.execute(
        "INSERT INTO stories (created, first_seen, last_seen) VALUES (?, ?, ?) RETURNING id",
        (now, now, now),
    ).fetchone()
    return int(story)


def _drop_if_empty(conn: Conn, story: int) -> None:
    conn.execute(
        "DELETE FROM stories WHERE id = ? AND NOT EXISTS"
        " (SELECT 1 FROM story_links WHERE story_id = ?)",
        (story, story),
    )

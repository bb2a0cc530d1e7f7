"""What each route was sent of each story (table `story_sent`, migration m011).

A story goes to a route once as new. The row keeps what the route's receiver was shown then
(outlets, languages, severity, which digest, when), written in the transaction that freezes
that digest (`Outbox.freeze` calls `put_sent`), so a digest and its record of stories stand
or fall together. A later report of the story either makes an update entry (the route has
`updates: true` and the story grew: a new outlet, a new language, a higher severity), which
moves the row forward, or is covered: claimed for the route in `deliveries` with
`shown = COVERED` and the digest that carried the story, so it is never pending again and
`monitor items show` still says where its story went.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.store.core import Store
from monitor.store.pg import Conn
from monitor.store.rows import _ts

COVERED = 3  # deliveries.shown: its story already went to the route (see the docstring)


@dataclass(frozen=True)
class SentStory:
    """A story as a route last sent it."""

    story_id: int
    outlets: tuple[str, ...]  # feed ids
    languages: tuple[str, ...]  # primary subtags
    severity: str
    digest_id: str = ""  # filled when read back
    sent: datetime | None = None  # when its digest was frozen; filled when read back


def put_sent(
    conn: Conn, route_id: str, digest_id: str, stories: Sequence[SentStory], now: datetime
) -> None:
    """Record (or move forward) what `route_id` was sent of these stories, inside the
    caller's transaction."""
    conn.executemany(
        "INSERT INTO story_sent (route_id, story_id, outlets, languages, severity,"
        " digest_id, sent) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (route_id, story_id)"
        " DO UPDATE SET outlets = excluded.outlets, languages = excluded.languages,"
        " severity = excluded.severity, digest_id = excluded.digest_id, sent = excluded.sent",
        [
            (route_id, s.story_id, json.dumps(list(s.outlets)), json.dumps(list(s.languages)),
             s.severity, digest_id, _ts(now))
            for s in stories
        ],
    )  # fmt: skip


class StorySent:
    """The `story_sent` records of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def sent(self, route_id: str, story_ids: Iterable[int]) -> dict[int, SentStory]:
        """The stories of `story_ids` this route was already sent, by story id."""
        rows = self._store._rows(
            "SELECT * FROM story_sent WHERE route_id = ?"
            " AND story_id IN (SELECT value FROM json_each(?))",
            (route_id, json.dumps(sorted(set(story_ids)))),
        )
        return {
            r["story_id"]: SentStory(
                story_id=r["story_id"],
                outlets=tuple(json.loads(r["outlets"])),
                languages=tuple(json.loads(r["languages"])),
                severity=r["severity"],
                digest_id=r["digest_id"],
                sent=datetime.fromisoformat(r["sent"]).astimezone(UTC),
            )
            for r in rows
        }

    def unlinked(self, item_ids: Iterable[int]) -> set[int]:
        """Which of these items the poll stored but has not linked to a story yet."""
        rows = self._store._rows(
            "SELECT item_id FROM story_pending WHERE item_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(item_ids))),),
        )
        return {int(r["item_id"]) for r in rows}

    def delivered(self, route_id: str, item_ids: Iterable[int]) -> dict[int, str]:
        """Which of these items the route listed in a digest (item id -> digest id)."""
        rows = self._store._rows(
            "SELECT item_id, digest_id FROM deliveries WHERE route_id = ? AND shown = 1"
            " AND item_id IN (SELECT value FROM json_each(?))",
            (route_id, json.dumps(sorted(set(item_ids)))),
        )
        return {int(r["item_id"]): r["digest_id"] for r in rows}

    def cover(self, route_id: str, covered: Sequence[tuple[int, str]]) -> None:
        """Claim (item id, digest id) pairs for the route as covered by a story it already
        sent; an item claimed meanwhile (by another process) stays as it is."""
        if not covered:
            return
        with self._store._guard("cannot write to"), self._store._write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (route_id, item_id, digest_id, shown)"
                " VALUES (?, ?, ?, ?)",
                [(route_id, item_id, digest_id, COVERED) for item_id, digest_id in covered],
            )

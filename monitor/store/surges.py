"""Surges in the database: the counts detection needs, the surges that fired, and their alerts.

A surge is recorded once (`fire`), in the transaction that checks its cooldown, so two
processes detecting at once cannot both fire it. Its alert to a route is a frozen digest of the
outbox (`freeze`: the digest and the route's claim on the surge in one transaction), sent,
retried and recorded like any digest.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.models import Rendered, StoredItem
from monitor.store.core import Store
from monitor.store.pg import driver_errors
from monitor.store.rows import _ts
from monitor.story.surge import BASELINE, HOUR, StoryReport, Surge, VolumeCount, cooled

MAX_ITEMS = 50  # items an alert lists at most (the count in `why` says how many there were)


@dataclass(frozen=True)
class StoredSurge:
    id: int
    surge: Surge


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _surge(row: dict[str, Any]) -> StoredSurge:
    return StoredSurge(
        id=int(row["id"]),
        surge=Surge(
            kind=row["kind"],
            key=row["key"],
            why=row["why"],
            fired_at=_time(row["fired_at"]),
            items=tuple(json.loads(row["items"])),
            profile=row["profile"],
            facts=json.loads(row["facts"]),
        ),
    )


# Matches of the last hour and of the 7 days before it, per rule and per region. History
# (old news when first seen) is never alerted, so it counts in neither. The recent matches are
# taken first, by time (`matches_time`, m012), so a detection costs what a week holds, not
# what retention keeps: SQLite's planner would rather scan all matches in rule order otherwise
# (`INDEXED BY`, which PostgreSQL does not have: its planner picks the index by itself).
_RECENT = """WITH recent AS MATERIALIZED (SELECT item_id, rule_id, matched_at FROM matches
    {indexed} WHERE matched_at >= :start AND history = 0)"""
# One row per (item, rule) in `matches`, so a rule's rows are its items; a region counts each
# item once, at its first match. PostgreSQL names no output column in HAVING: the count again.
_LAST_HOUR = "count(*) FILTER (WHERE at >= :hour)"
_COUNTS = f"""{_LAST_HOUR} AS last_hour, count(*) FILTER (WHERE at < :hour) AS before,
    {{items}} AS items"""
_ITEMS = {
    False: "json_group_array(CASE WHEN at >= :hour THEN item_id END)",
    True: "coalesce(json_agg(CASE WHEN at >= :hour THEN item_id END)::text, '[]')",
}
_RULE_COUNTS = f"""{_RECENT} SELECT rule_id AS key, {_COUNTS}
    FROM (SELECT item_id, rule_id, matched_at AS at FROM recent) AS m
    GROUP BY rule_id HAVING {_LAST_HOUR} >= :min"""
_REGION_COUNTS = f"""{_RECENT} SELECT r.code AS key, {_COUNTS}
    FROM (SELECT item_id, min(matched_at) AS at FROM recent GROUP BY item_id) AS m
    JOIN item_regions AS r USING (item_id)
    GROUP BY r.code HAVING {_LAST_HOUR} >= :min"""


def _counts_sql(template: str, pg: bool) -> str:
    return template.format(indexed="" if pg else "INDEXED BY matches_time", items=_ITEMS[pg])


class Surges:
    """The surges of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def volume_counts(self, now: datetime, at_least: int) -> list[VolumeCount]:
        """Per rule (`rule:ID`) and region (`region:CODE`) with at least `at_least` matched
        items in the last hour: that count and the count of the 7 days before."""
        params = {"hour": _ts(now - HOUR), "start": _ts(now - HOUR - BASELINE), "min": at_least}
        counts = []
        pg = self._store.backend == "postgresql"
        for prefix, template in (("rule", _RULE_COUNTS), ("region", _REGION_COUNTS)):
            found = self._store._rows(_counts_sql(template, pg), params)  # type: ignore[arg-type]
            # By key in code point order (as SQLite sorts), whatever PostgreSQL's collation.
            for row in sorted(found, key=lambda r: str(r["key"])):
                items = sorted(i for i in json.loads(row["items"]) if i is not None)
                counts.append(
                    VolumeCount(
                        key=f"{prefix}:{row['key']}",
                        last_hour=int(row["last_hour"]),
                        before=int(row["before"]),
                        items=tuple(items[-MAX_ITEMS:]),
                    )
                )
        return counts

    def story_reports(self, since: datetime) -> dict[int, list[StoryReport]]:
        """The reports of every story that has a report first seen since `since`."""
        rows = self._store._rows("SELECT id FROM items WHERE first_seen >= ?", (_ts(since),))
        stories = self._store.item_stories(r["id"] for r in rows)
        members = self._store.story_members(set(stories.values()))
        return {story: [_report(s) for s in items] for story, items in members.items()}

    def fire(self, surges: Sequence[Surge], cooldown: timedelta) -> list[StoredSurge]:
        """Record the surges whose key has not fired (with the same thresholds) within
        `cooldown`; returns those recorded. Check and record are one transaction. The surges
        of one call share their kind and thresholds (`profile`)."""
        fired = []
        with self._store._guard("cannot write to"), self._store._write() as conn:
            last = {}
            for surge in surges:
                when = conn.execute(
                    "SELECT max(fired_at) FROM surges WHERE kind = ? AND profile = ? AND key = ?",
                    (surge.kind, surge.profile, surge.key),
                ).fetchone()[0]
                if when is not None:
                    last[surge.key] = _time(when)
            for surge in cooled(surges, last, cooldown):
                (surge_id,) = conn.execute(
                    "INSERT INTO surges (kind, key, profile, why, fired_at, items, facts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        surge.kind, surge.key, surge.profile, surge.why, _ts(surge.fired_at),
                        json.dumps(list(surge.items)), json.dumps(dict(surge.facts)),
                    ),
                ).fetchone()  # fmt: skip
                fired.append(StoredSurge(int(surge_id), surge))
        return fired

    def pending(
        self, route_id: str, since: datetime, wanted: Iterable[tuple[str, str]]
    ) -> list[StoredSurge]:
        """Surges fired since `since` of the wanted (kind, profile) pairs that the route has
        not been sent, oldest first."""
        rows = self._store._rows(
            "SELECT * FROM surges WHERE fired_at >= ?"
            " AND kind || ' ' || profile IN (SELECT value FROM json_each(?))"
            " AND id NOT IN (SELECT surge_id FROM surge_deliveries WHERE route_id = ?)"
            " ORDER BY fired_at, id",
            (_ts(since), json.dumps([f"{k} {p}" for k, p in wanted]), route_id),
        )
        return [_surge(r) for r in rows]

    def freeze(
        self, rendered: Rendered, route_id: str, receiver_id: str, surge_id: int, now: datetime
    ) -> bool:
        """Store the alert of one surge to one route and claim the surge for the route, all
        or nothing. False when the route already has it (another process froze it)."""
        try:
            with self._store._guard("cannot write to"), self._store._write() as conn:
                conn.execute(
                    "INSERT INTO digests (id, route_id, receiver_id, kind, created, subject,"
                    " content_type, body, shown, truncated, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 'pending')",
                    (
                        rendered.digest_id, route_id, receiver_id, rendered.kind, _ts(now),
                        rendered.subject, rendered.content_type, rendered.body,
                    ),
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO surge_deliveries (route_id, surge_id, digest_id) VALUES (?, ?, ?)",
                    (route_id, surge_id, rendered.digest_id),
                )
        except driver_errors("IntegrityError", sqlite3.IntegrityError):
            return False
        return True

    def recent(self, limit: int = 10) -> list[StoredSurge]:
        rows = self._store._rows(
            "SELECT * FROM surges ORDER BY fired_at DESC, id DESC LIMIT ?", (limit,)
        )
        return [_surge(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Surges fired, per kind."""
        rows = self._store._rows("SELECT kind, count(*) AS n FROM surges GROUP BY kind")
        return {r["kind"]: int(r["n"]) for r in rows}


def _report(stored: StoredItem) -> StoryReport:
    item = stored.item
    return StoryReport(stored.id, item.feed_id, item.lang, item.published, item.first_seen)

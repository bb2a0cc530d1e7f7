"""The outbox tables: routes, frozen digests, per-route deliveries, disabled receivers.

Statuses of a digest: `pending` (frozen, never tried), `retrying` (failed, will be tried again
at `next_attempt`), `delivered` (the server accepted it), `dead` (given up: permanent failure
or too old; `monitor digest retry ID` puts it back to `pending`).

`deliveries` claims an item for a route once: `shown` is 1 when the digest lists it in full,
2 when it only refers to it (the receiver got it in full from another route). Items a digest
counted but did not list (over `max_items`) are not claimed: they stay pending for the
route's next digest, and `left_out` remembers them for `monitor digest show ID --left-out`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.models import Rendered
from monitor.store.core import Store
from monitor.store.pg import driver_errors
from monitor.store.rows import _in_code_order, _ts, stored_terms
from monitor.store.storysent import SentStory, put_sent

ACTIVE = ("pending", "retrying")
LISTED, REFERRED = 1, 2  # deliveries.shown


@dataclass(frozen=True)
class PendingMatch:
    """A stored match not yet delivered to a route."""

    item_id: int
    rule_id: str
    score: float
    terms: tuple[str, ...]
    matched_at: datetime


@dataclass(frozen=True)
class FrozenDigest:
    id: str
    route_id: str
    receiver_id: str
    kind: str
    created: datetime
    subject: str
    content_type: str
    body: bytes
    shown: int
    truncated: int
    status: str
    attempts: int = 0
    next_attempt: datetime | None = None
    last_error: str | None = None
    delivered: datetime | None = None
    leased_until: datetime | None = None  # a process is sending it until then


@dataclass(frozen=True)
class Claims:
    """The items a digest claims for its route (listed in full, or referred to) and those it
    counted without listing (left for the route's next digest)."""

    listed: tuple[int, ...] = ()
    referred: tuple[int, ...] = ()
    left_out: tuple[int, ...] = ()
    stories: tuple[SentStory, ...] = ()  # what the route is now sent of each story


@dataclass(frozen=True)
class SentRecord:
    """When a receiver got an item in full, and in which digest."""

    sent: datetime
    digest_id: str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


def _digest(row: dict[str, Any]) -> FrozenDigest:
    return FrozenDigest(
        **{
            **row,
            "created": _time(row["created"]),
            "next_attempt": _time(row["next_attempt"]),
            "delivered": _time(row["delivered"]),
            "leased_until": _time(row["leased_until"]),
            "body": bytes(row["body"]),
        }
    )


class Outbox:
    """The outbox of one store: what to send, what was sent, what failed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pg = store.backend == "postgresql"  # see `rows._in_code_order`

    def route_start(self, route_id: str, now: datetime) -> datetime:
        """When the route was first seen: it takes matches from then on, never older ones
        (a new route must not flood its receiver with history)."""
        with self._store._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO routes (route_id, first_seen) VALUES (?, ?)",
                (route_id, _ts(now)),
            )
            row = conn.execute(
                "SELECT first_seen FROM routes WHERE route_id = ?", (route_id,)
            ).fetchone()
        start = _time(row[0])
        assert start is not None
        return start

    def pending(self, route_id: str, since: datetime) -> list[PendingMatch]:
        """Matches recorded since `since` whose item this route has not had yet. History
        (items that were old news when first seen) is never delivered."""
        rows = self._store._rows(
            "SELECT item_id, rule_id, score, hits, matched_at FROM matches"
            " WHERE matched_at >= ? AND history = 0 AND item_id NOT IN"
            " (SELECT item_id FROM deliveries WHERE route_id = ?)"
            " ORDER BY matched_at, item_id, rule_id",
            (_ts(since), route_id),
        )
        return [
            PendingMatch(
                item_id=r["item_id"],
                rule_id=r["rule_id"],
                score=float(r["score"]),
                terms=stored_terms(r["hits"]),
                matched_at=_time(r["matched_at"]) or since,
            )
            for r in _in_code_order(rows, "matched_at", "item_id", "rule_id", pg=self._pg)
        ]

    def freeze(
        self,
        rendered: Rendered,
        route_id: str,
        receiver_id: str,
        claims: Claims,
        now: datetime,
    ) -> bool:
        """Store a digest and claim its items, all or nothing. False when another process
        claimed one of the items meanwhile (nothing is stored then; collect again)."""
        listed = [*claims.listed, *claims.referred]
        try:
            with self._store._guard("cannot write to"), self._store._write() as conn:
                conn.execute(
                    "INSERT INTO digests (id, route_id, receiver_id, kind, created, subject,"
                    " content_type, body, shown, truncated, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (
                        rendered.digest_id, route_id, receiver_id, rendered.kind, _ts(now),
                        rendered.subject, rendered.content_type, rendered.body,
                        len(listed), len(claims.left_out),
                    ),
                )  # fmt: skip
                rows = [(route_id, i, rendered.digest_id, LISTED) for i in claims.listed]
                rows += [(route_id, i, rendered.digest_id, REFERRED) for i in claims.referred]
                conn.executemany(
                    "INSERT INTO deliveries (route_id, item_id, digest_id, shown)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
                conn.executemany(
                    "INSERT INTO left_out (digest_id, item_id) VALUES (?, ?)",
                    [(rendered.digest_id, i) for i in claims.left_out],
                )
                put_sent(conn, route_id, rendered.digest_id, claims.stories, now)
        except driver_errors("IntegrityError", sqlite3.IntegrityError):
            return False
        return True

    def sent_to(self, receiver_id: str, item_ids: Sequence[int]) -> dict[int, SentRecord]:
        """Which of these items the receiver already had in full from any route, in a digest
        delivered or on its way (not dead): when, and in which digest (the first one)."""
        # Every such digest, and each item's first one kept here: a digest id beside min()
        # under GROUP BY is SQLite's alone (PostgreSQL refuses it).
        rows = self._store._rows(
            "SELECT d.item_id, coalesce(g.delivered, g.created) AS sent, g.id"
            " FROM deliveries d JOIN digests g ON g.id = d.digest_id"
            " WHERE d.item_id IN (SELECT value FROM json_each(?)) AND d.shown = ?"
            " AND g.receiver_id = ? AND g.status != 'dead'",
            (json.dumps(list(item_ids)), LISTED, receiver_id),
        )
        first: dict[int, SentRecord] = {}
        for r in _in_code_order(rows, "sent", "id"):
            first.setdefault(r["item_id"], SentRecord(_time(r["sent"]) or _EPOCH, r["id"]))
        return first

    def left_out(self, digest_id: str) -> list[int]:
        """The items a digest counted but did not list, as item ids."""
        rows = self._store._rows(
            "SELECT item_id FROM left_out WHERE digest_id = ? ORDER BY item_id", (digest_id,)
        )
        return [r["item_id"] for r in rows]

    def due(self, now: datetime) -> list[FrozenDigest]:
        """Frozen digests to send now, oldest first, skipping disabled receivers."""
        rows = self._store._rows(
            "SELECT * FROM digests WHERE status IN ('pending', 'retrying')"
            " AND (next_attempt IS NULL OR next_attempt <= ?)"
            " AND receiver_id NOT IN (SELECT receiver_id FROM disabled_receivers)"
            " ORDER BY created, id",
            (_ts(now),),
        )
        return [_digest(r) for r in _in_code_order(rows, "created", "id", pg=self._pg)]

    def lease(self, digest_id: str, now: datetime, until: datetime) -> bool:
        """Take a due digest for sending until `until`; False when another process has it.

        The lease is the next attempt time: if this process dies while sending, the digest
        becomes due again when the lease runs out (one resend, never a loss).
        """
        with self._store._guard("cannot write to"), self._store._write() as conn:
            cursor = conn.execute(
                "UPDATE digests SET next_attempt = ?, leased_until = ? WHERE id = ?"
                " AND status IN ('pending', 'retrying')"
                " AND (next_attempt IS NULL OR next_attempt <= ?)",
                (_ts(until), _ts(until), digest_id, _ts(now)),
            )
            return cursor.rowcount == 1

    def get(self, digest_id: str) -> FrozenDigest | None:
        rows = self._store._rows("SELECT * FROM digests WHERE id = ?", (digest_id,))
        return _digest(rows[0]) if rows else None

    def recent(self, statuses: Sequence[str], limit: int = 20) -> list[FrozenDigest]:
        # Digests frozen in one round share `created`: their ids (route ids inside) order
        # them, in code point order on both backends (see `rows._in_code_order`; sorted in
        # SQL here, above the LIMIT).
        by_id = 'id COLLATE "C"' if self._pg else "id"
        rows = self._store._rows(
            "SELECT * FROM digests WHERE status IN (SELECT value FROM json_each(?))"
            f" ORDER BY created DESC, {by_id} LIMIT ?",
            (json.dumps(list(statuses)), limit),
        )
        return [_digest(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._store._rows("SELECT status, count(*) AS n FROM digests GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    def record_sent(self, digest_id: str, now: datetime) -> None:
        self._update(
            "UPDATE digests SET status = 'delivered', delivered = ?, attempts = attempts + 1,"
            " next_attempt = NULL, leased_until = NULL, last_error = NULL WHERE id = ?",
            (_ts(now), digest_id),
        )

    def record_failure(self, digest_id: str, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: tried again at `retry_at`, or dead when it is None."""
        status = "retrying" if retry_at is not None else "dead"
        self._update(
            "UPDATE digests SET status = ?, attempts = attempts + 1, next_attempt = ?,"
            " leased_until = NULL, last_error = ? WHERE id = ?",
            (status, _ts(retry_at), error, digest_id),
        )

    def requeue(self, digest_id: str, now: datetime) -> bool:
        """Make a dead or retrying digest due now (`monitor digest retry`); False when it is
        neither, or while another process holds its lease (it is being sent right now)."""
        with self._store._guard("cannot write to"), self._store._write() as conn:
            cursor = conn.execute(
                "UPDATE digests SET status = 'pending', next_attempt = NULL, leased_until = NULL"
                " WHERE id = ? AND status IN ('dead', 'retrying')"
                " AND (leased_until IS NULL OR leased_until <= ?)",
                (digest_id, _ts(now)),
            )
            return cursor.rowcount == 1

    def disable_receiver(self, receiver_id: str, reason: str, now: datetime) -> None:
        self._update(
            "INSERT INTO disabled_receivers (receiver_id, reason, since) VALUES (?, ?, ?)"
            " ON CONFLICT (receiver_id) DO UPDATE SET reason = excluded.reason,"
            " since = excluded.since",
            (receiver_id, reason, _ts(now)),
        )

    def enable_receiver(self, receiver_id: str) -> bool:
        with self._store._guard("cannot write to"), self._store._write() as conn:
            cursor = conn.execute(
                "DELETE FROM disabled_receivers WHERE receiver_id = ?", (receiver_id,)
            )
            return cursor.rowcount == 1

    def disabled(self) -> dict[str, str]:
        rows = self._store._rows("SELECT receiver_id, reason FROM disabled_receivers")
        return {r["receiver_id"]: r["reason"] for r in rows}

    def _update(self, sql: str, params: Sequence[object]) -> None:
        with self._store._guard("cannot write to"), self._store._write() as conn:
            conn.execute(sql, params)

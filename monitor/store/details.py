"""One item told whole, for `monitor items show`: its stored matches with their hits (found
again from the terms the store kept: `match.explain`), and the digests it went out in; and the
match counts `monitor status` shows.

Read-only views over the tables the ingest stage (`matches`) and the outbox (`deliveries`,
`digests`) write; apart from `core` so that the `Store` stays about writing and searching.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.match.explain import hits_of_terms
from monitor.match.rule import Hit
from monitor.models import Item, StoredItem
from monitor.store.core import Store
from monitor.store.rows import _in_code_order


@dataclass(frozen=True)
class StoredMatch:
    """A rule's match as recorded when the item was stored."""

    rule_id: str
    score: float
    hits: tuple[Hit, ...]
    matched_at: datetime
    history: bool  # old news when first seen: kept, never delivered


@dataclass(frozen=True)
class ItemDigest:
    """A digest the item went out in (or is frozen in, waiting to go)."""

    digest_id: str
    route_id: str
    receiver_id: str
    status: str  # pending | retrying | delivered | dead
    created: datetime
    delivered: datetime | None


@dataclass(frozen=True)
class ItemDetail:
    stored: StoredItem
    matches: tuple[StoredMatch, ...]
    digests: tuple[ItemDigest, ...]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


def _match(row: dict[str, Any], item: Item) -> StoredMatch:
    stored = json.loads(row["hits"])
    if all(isinstance(h, dict) for h in stored):  # a row from before terms: positions kept
        hits = tuple(Hit(h["term"], h["field"], h["start"], h["end"]) for h in stored)
    else:
        hits = hits_of_terms([h for h in stored if isinstance(h, str)], item)
    matched_at = _time(row["matched_at"])
    assert matched_at is not None  # NOT NULL in the schema
    return StoredMatch(row["rule_id"], float(row["score"]), hits, matched_at, bool(row["history"]))


def _digest(row: dict[str, Any]) -> ItemDigest:
    created = _time(row["created"])
    assert created is not None  # NOT NULL in the schema
    return ItemDigest(
        digest_id=row["id"],
        route_id=row["route_id"],
        receiver_id=row["receiver_id"],
        status=row["status"],
        created=created,
        delivered=_time(row["delivered"]),
    )


def item_detail(store: Store, item_id: int) -> ItemDetail | None:
    """Everything stored about one item; None when there is no item with that id."""
    found = store.get_items([item_id])
    if not found:
        return None
    matches = store._rows(
        "SELECT rule_id, score, hits, matched_at, history FROM matches WHERE item_id = ?"
        " ORDER BY matched_at, rule_id",
        (item_id,),
    )
    digests = store._rows(
        "SELECT digests.id, digests.route_id, digests.receiver_id, digests.status,"
        " digests.created, digests.delivered FROM deliveries"
        " JOIN digests ON digests.id = deliveries.digest_id"
        " WHERE deliveries.item_id = ? ORDER BY digests.created, digests.id",
        (item_id,),
    )
    pg = store.backend == "postgresql"
    return ItemDetail(
        stored=found[0],
        matches=tuple(
            _match(row, found[0].item)
            for row in _in_code_order(matches, "matched_at", "rule_id", pg=pg)
        ),
        digests=tuple(map(_digest, _in_code_order(digests, "created", "id", pg=pg))),
    )


def match_totals(store: Store) -> tuple[int, int]:
    """Matches stored, and how many of them are history (old news, never delivered)."""
    row = store._rows("SELECT count(*) AS n, coalesce(sum(history), 0) AS h FROM matches")[0]
    return int(row["n"]), int(row["h"])

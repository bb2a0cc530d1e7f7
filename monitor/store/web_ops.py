"""Read-only views for the console's feeds and deliveries pages (`monitor.web.pages`).

What the outbox and the `Store` do not already answer: items stored per feed, the items a
digest claimed, which digests are surge alerts, and since when a receiver is disabled. Each
is one query whatever the number of rows shown (no query per row).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.store.core import Store


@dataclass(frozen=True)
class DisabledReceiver:
    receiver_id: str
    reason: str  # the send's error, redacted when it was recorded (deliver.result.one_line)
    since: datetime


@dataclass(frozen=True)
class DigestEntry:
    """An item a digest claimed: listed in full (`shown` 1) or only referred to (2)."""

    item_id: int
    shown: int


def items_per_feed(store: Store) -> dict[str, int]:
    """Items stored per feed id. One pass over the (feed_id, published) index: the costliest
    query of the feeds page (~100,000 index entries for 100,000 items), still a few ms."""
    rows = store._rows("SELECT feed_id, count(*) AS n FROM items GROUP BY feed_id")
    return {r["feed_id"]: int(r["n"]) for r in rows}


def digest_entries(store: Store, digest_id: str) -> list[DigestEntry]:
    """The items a digest claimed, in item order (index `deliveries_digest`)."""
    rows = store._rows(
        "SELECT item_id, shown FROM deliveries WHERE digest_id = ? ORDER BY shown, item_id",
        (digest_id,),
    )
    return [DigestEntry(int(r["item_id"]), int(r["shown"])) for r in rows]


def surge_alerts(store: Store, digest_ids: Sequence[str]) -> set[str]:
    """Which of these digests are surge alerts rather than digests of matches."""
    if not digest_ids:
        return set()
    rows = store._rows(
        "SELECT DISTINCT digest_id FROM surge_deliveries"
        " WHERE digest_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(digest_ids)),),
    )
    return {r["digest_id"] for r in rows}


def disabled_receivers(store: Store) -> list[DisabledReceiver]:
    """Receivers the outbox stopped sending to (a webhook answered 410), longest first."""
    rows = store._rows(
        "SELECT receiver_id, reason, since FROM disabled_receivers ORDER BY since, receiver_id"
    )
    return [
        DisabledReceiver(
            r["receiver_id"], r["reason"], datetime.fromisoformat(r["since"]).astimezone(UTC)
        )
        for r in rows
    ]

"""Values in and out of SQL: model objects to row tuples and back, and the SQL they go through.

Kept apart from `core` so that the `Store` reads as what it does with the database, while the
mechanical part (ISO-8601 timestamps, JSON columns, statements built from the model fields)
lives here; `outbox` shares the timestamp format through `_ts`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from monitor.match.rule import Match
from monitor.models import EntityTag, FeedState, Item, StoredItem

# --- values in and out -------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    """An aware datetime as fixed-width ISO-8601 UTC text, so text order is time order."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes aware UTC datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_TIMES = {
    "published", "first_seen", "updated", "last_attempt", "last_success", "next_due",
    "first_polled",
}  # fmt: skip
# Columns named after the model fields: a field added to models.py without a migration adding
# its column fails loudly at the first write instead of being silently dropped.
_STATE_COLUMNS = tuple(f.name for f in fields(FeedState))
_ITEM_COLUMNS = tuple(f.name for f in fields(Item))
_EDITABLE = ("link", "title", "summary", "html", "author", "content_hash", "regions", "entities")


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_PUT_STATE = (
    _insert_sql("feeds", _STATE_COLUMNS)
    + " ON CONFLICT (feed_id) DO UPDATE SET "
    + (", ".join(f"{c} = excluded.{c}" for c in _STATE_COLUMNS[1:]))
)
_INSERT_ITEM = _insert_sql("items", ("id", *_ITEM_COLUMNS))  # the id: see saving._insert
_INDEX_ITEM = "INSERT INTO items_fts (rowid, title, summary) VALUES (?, ?, ?)"
# PostgreSQL's index row also holds the tsvector the store made of the same text (`pgtext`):
# cast from its literal, never `to_tsvector`, whose parser would cut the words again.
_INDEX_ITEM_PG = "INSERT INTO items_fts (rowid, title, summary, doc) VALUES (?, ?, ?, ?::tsvector)"
_UPDATE_ITEM = "UPDATE items SET {}, updated = ? WHERE id = ?".format(
    ", ".join(f"{c} = ?" for c in _EDITABLE)
)


def _to_sql(value: object) -> object:
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, tuple) and value and isinstance(value[0], EntityTag):  # entities
        # as_json, not dataclasses.asdict: the same dict, without its deep copy (~9% of a
        # worker's time with rules went to asdict)
        return json.dumps([tag.as_json() for tag in value], ensure_ascii=False)
    if isinstance(value, tuple):  # regions: codes in ASCII (regionfile), so as json.dumps gave
        return _strings_json(value)
    return int(value) if isinstance(value, bool) else value


# An item's regions and a match's terms repeat from item to item (the same few codes, a
# rule's same few terms): each distinct tuple is made JSON once (json.dumps was ~4% of a
# worker's time with the default rules, its C encoder entered through three Python calls).
@lru_cache(maxsize=4096)
def _strings_json(strings: tuple[str, ...]) -> str:
    return json.dumps(strings, ensure_ascii=False)


def _from_sql(column: str, value: Any) -> Any:
    if column in _TIMES and value is not None:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if column == "regions":
        return tuple(json.loads(value))
    if column == "entities":
        return tuple(EntityTag(**tag) for tag in json.loads(value))
    return bool(value) if column == "gone" else value


def _row(obj: object, columns: Sequence[str]) -> tuple[object, ...]:
    return tuple(_to_sql(getattr(obj, column)) for column in columns)


# An item's row without asking each value its type: only the columns whose field is not text
# go through `_to_sql` (a third of the cost of preparing an item's row).
_ITEM_VALUES = operator.attrgetter(*_ITEM_COLUMNS)
_ITEM_CONVERTED = tuple(
    n for n, f in enumerate(fields(Item)) if str(f.type) not in ("str", "str | None")
)


def _item_row(item: Item) -> tuple[object, ...]:
    """`_row(item, _ITEM_COLUMNS)`, faster."""
    values = list(_ITEM_VALUES(item))
    for n in _ITEM_CONVERTED:
        values[n] = _to_sql(values[n])
    return tuple(values)


def _in_code_order(
    rows: list[dict[str, Any]], *columns: str, pg: bool = True
) -> list[dict[str, Any]]:
    """`rows` sorted by `columns` with text in code point order, NULL first: SQLite's order.
    PostgreSQL sorts text by the database's collation (en_US puts `abc` before `Zed` and
    `dprk_b` before `dprk-a`), so an order users see is made here. `pg=False` says the rows
    come from SQLite's `ORDER BY` of the same columns: kept as they are (sorting 10,000 rows
    again would add a third to `Outbox.pending`)."""
    if not pg:
        return rows
    return sorted(rows, key=lambda row: tuple((row[c] is not None, row[c]) for c in columns))


def _state(row: dict[str, Any]) -> FeedState:
    return FeedState(**{c: _from_sql(c, row[c]) for c in _STATE_COLUMNS})


@dataclass(frozen=True)
class FeedSchedule:
    """What deciding whether a feed is due reads of its state (`feedstate.is_due`): a cycle
    reads this of every feed, and the whole state of those it polls. A type of its own, so
    that it is never taken for a state (its validators and known items are not read)."""

    configured_url: str | None
    next_due: datetime | None
    consecutive_errors: int
    gone: bool


SCHEDULES = "SELECT feed_id, configured_url, next_due, consecutive_errors, gone FROM feeds"


def _schedule(row: dict[str, Any]) -> FeedSchedule:
    next_due = row["next_due"]
    when = None if next_due is None else datetime.fromisoformat(next_due).replace(tzinfo=UTC)
    return FeedSchedule(row["configured_url"], when, row["consecutive_errors"], bool(row["gone"]))


def _stored(row: dict[str, Any]) -> StoredItem:
    item = Item(**{c: _from_sql(c, row[c]) for c in _ITEM_COLUMNS})
    return StoredItem(id=row["id"], item=item, updated=_from_sql("updated", row["updated"]))


# A rule matching an edited item again keeps its first time and its history flag: a match
# once due for delivery must not turn into history (and be lost) because the item changed.
_UPSERT_MATCH = """INSERT INTO matches (item_id, rule_id, score, hits, matched_at, history)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (item_id, rule_id) DO UPDATE SET score = excluded.score, hits = excluded.hits"""


def _terms_json(match: Match) -> str:
    """What a match's `hits` column keeps: its terms that hit, a JSON list of strings. (Rows
    written before kept every hit: objects with the term and its position; both are read.)"""
    return _strings_json(match.terms)


def stored_terms(column: str) -> tuple[str, ...]:
    """The terms of a match's `hits` column, once each, in order (either form)."""
    return tuple(dict.fromkeys(h if isinstance(h, str) else h["term"] for h in json.loads(column)))

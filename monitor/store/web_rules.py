"""What the console's rules page and playground read: each rule's matches per day and its last
match, and the texts of the items of a time window (narrowed by the full-text index when the
query allows: FTS5 on SQLite, the same narrowing as a tsquery on PostgreSQL).

Read-only, one query per question whatever the number of rules or items. Costs at 100,000
stored items: `rule_activity` walks the `matches_time` index over the window's matches (a few
ms per 10,000 matches) and looks each rule's last match up in `matches_rule` (log n each);
`window_texts` is the dear one: a few us per row it returns, more for an FTS5 expression of
many ORs, so the playground narrows it with `prefilter` first and caps it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from monitor.match.nodes import And, Field, Near, Node, Not, Or, Phrase, Term
from monitor.match.rule import Rule
from monitor.match.textnorm import Script, fold, script_of
from monitor.store import pgtext
from monitor.store.core import Store
from monitor.store.ftsquery import NOWHERE, fts_phrase
from monitor.store.rows import _ts
from monitor.store.storyrows import json_values


@dataclass(frozen=True)
class RuleActivity:
    per_day: dict[date, int]  # UTC days with at least one match
    last: datetime | None  # the rule's last match ever (None: never matched)


def rule_activity(
    store: Store, rule_ids: Sequence[str], since: datetime
) -> dict[str, RuleActivity]:
    """Per rule id: its matches per UTC day since `since`, and its last match time.

    Counted by when the match was stored (`matched_at`), old news of a first poll included:
    it is what the rule did that day.
    """
    days = store._rows(
        "SELECT rule_id, substr(matched_at, 1, 10) AS day, count(*) AS n FROM matches"
        " WHERE matched_at >= ? GROUP BY rule_id, day",
        (_ts(since),),
    )
    # One statement, one index probe per rule: max() over `matches_rule` (rule_id, matched_at).
    lasts = store._rows(
        "SELECT value AS rule_id,"
        " (SELECT max(matched_at) FROM matches WHERE rule_id = value) AS last"
        f" FROM {json_values('?', store.backend == 'postgresql')}",
        (json.dumps(list(rule_ids)),),
    )
    per_rule: dict[str, dict[date, int]] = {}
    for row in days:
        per_rule.setdefault(row["rule_id"], {})[date.fromisoformat(row["day"])] = int(row["n"])
    return {
        row["rule_id"]: RuleActivity(per_rule.get(row["rule_id"], {}), _time(row["last"]))
        for row in lasts
    }


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


@dataclass(frozen=True)
class ItemText:
    """What matching an item needs, and no more (the rest is fetched for the few shown)."""

    id: int
    feed_id: str
    title: str
    summary: str
    lang: str | None
    published: datetime


def window_texts(
    store: Store, since: datetime, fts: str | None, limit: int
) -> tuple[list[ItemText], bool]:
    """The items published at or after `since`, newest first, at most `limit`; and whether
    there were more. With `fts` (see `prefilter`): only those it finds, and those with Korean
    text, which the index cannot narrow."""
    where, params = "published >= ?", [_ts(since)]
    if fts is not None:
        # One set of ids to look up (index hits, and every item with Korean text: see
        # `prefilter`), rather than a test on each item of the window.
        test = "doc @@ ?::tsquery" if store.backend == "postgresql" else "items_fts MATCH ?"
        where += (
            f" AND id IN (SELECT rowid FROM items_fts WHERE {test}"
            " UNION ALL SELECT item_id FROM item_hangul)"
        )
        params.append(fts)
    rows = _tuples(
        store,
        "SELECT id, feed_id, title, summary, lang, published FROM items"
        f" WHERE {where} ORDER BY published DESC, id DESC LIMIT ?",
        (*params, limit + 1),
    )
    texts = [
        ItemText(i, feed, title, summary, lang, datetime.fromisoformat(published))
        for i, feed, title, summary, lang, published in rows[:limit]
    ]
    return texts, len(rows) > limit


def _tuples(store: Store, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Rows as tuples: thousands of them, and a dict per row (`Store._rows`) cost a third of
    the playground's time."""
    if store._pg is not None:
        with store._guard("cannot read"), store._pg.connection() as conn:
            return list(conn.execute(sql, params).fetchall())
    with store._lock, store._guard("cannot read"):
        return store._db.conn.execute(sql, params).fetchall()


def count_window(store: Store, since: datetime) -> int:
    """How many items were published at or after `since` (the `items_published` index)."""
    rows = store._rows("SELECT count(*) AS n FROM items WHERE published >= ?", (_ts(since),))
    return int(rows[0]["n"])


# --- narrowing by the full-text index ------------------------------------------------------


@dataclass(frozen=True)
class _Words:
    """How the narrowing is written: FTS5's expressions, or PostgreSQL's tsqueries (`pg`)."""

    phrase: Callable[..., str]
    nowhere: str
    both: Callable[[list[str]], str]
    either: Callable[[list[str]], str]


_FTS5 = _Words(
    fts_phrase,
    NOWHERE,
    lambda parts: "(" + " AND ".join(parts) + ")",
    lambda parts: "(" + " OR ".join(parts) + ")",
)
_TSQUERY = _Words(
    pgtext.ts_phrase,
    pgtext.NOWHERE,
    lambda parts: pgtext.joined("&", parts),
    lambda parts: pgtext.joined("|", parts),
)


def prefilter(rule: Rule, *, pg: bool = False) -> str | None:
    """An FTS5 expression (a tsquery if `pg`) that every item `rule` matches, unless it has
    Korean text, also matches; None when the rule's text gives none (scopes only, a NOT
    alone, a score that may be reached without its terms).

    Wider than the rule on purpose (NEAR becomes AND, `title:` any field, NOTs are left to
    the matcher): the real matcher then runs on what it finds. Items with Hangul are always
    read (`window_texts`, from `item_hangul`): the engine finds `UN` and `북한` in `북한UN`,
    which the index keeps as one token. So a Korean term stands for no item here.
    """
    words = _TSQUERY if pg else _FTS5
    if rule.tree is not None:
        return _need(rule.tree, words)
    if rule.score is None or rule.score.threshold <= 0:
        return None
    # Only a term of positive weight can reach a positive threshold: one of them must be there.
    positive = [term for term, weight in rule.score.terms if weight > 0]
    return _either([_need(term, words) for term in positive], words)


def _need(node: Node, words: _Words) -> str | None:
    if isinstance(node, Term | Phrase):
        if any(script_of(ch) is Script.HANGUL for ch in fold(node.text)):
            return words.nowhere
        return words.phrase(node.text, prefix=isinstance(node, Term) and node.prefix)
    if isinstance(node, Field):
        return _need(node.child, words)
    if isinstance(node, Near):
        return _both([_need(node.left, words), _need(node.right, words)], words)
    if isinstance(node, And):
        return _both([_need(c, words) for c in node.children if not isinstance(c, Not)], words)
    if isinstance(node, Or):
        return _either([_need(c, words) for c in node.children], words)
    return None  # a scope or a NOT: nothing the text index can require


def _both(parts: list[str | None], words: _Words) -> str | None:
    known = [p for p in parts if p is not None]
    return words.both(known) if known else None


def _either(parts: list[str | None], words: _Words) -> str | None:
    if not parts or None in parts:
        return None
    return words.either([str(p) for p in parts])

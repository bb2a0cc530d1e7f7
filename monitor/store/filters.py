"""The WHERE clause of `Store.search`: what a query, a date, a feed, a region or a rule narrows
the items to.

Apart from `core` because it is the search syntax, not storage. The text of a query becomes
FTS5 expressions (`ftsquery`) on SQLite and tsqueries (`pgtext`) on PostgreSQL, its scopes
(`region:`, `feed:`, `tag:`, `lang:`) plain SQL, the same on both.
The text every result must contain is kept apart as `SearchPlan.fts`: the store decides how to
use it (see `Store.search`), because the best plan depends on how many items it matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.match.nodes import And, EntityScope, FeedScope, Lang, Node, Not, Or, Region, Tag
from monitor.store.ftsquery import SearchQueryError, fts_expr, parse_search
from monitor.store.pgtext import ts_expr
from monitor.store.rows import _ts

_Filter = tuple[str, list[object]]  # a WHERE clause fragment with its parameters

_IN_FTS = "items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)"
# The same test made row by row: lets SQLite walk the items newest first and stop at LIMIT.
_EACH_FTS = (
    "EXISTS (SELECT 1 FROM items_fts WHERE items_fts MATCH ? AND items_fts.rowid = items.id)"
)
# PostgreSQL's form (`items_fts.doc`, see `pgtext`): its planner picks between the GIN index
# and walking the items newest first by itself (both forms plan alike there: see Store.search).
_IN_TS = "items.id IN (SELECT rowid FROM items_fts WHERE doc @@ ?::tsquery)"
_IN_REGION = "items.id IN (SELECT item_id FROM item_regions WHERE code = ?)"
_WITH_ENTITY = "items.id IN (SELECT item_id FROM item_entities WHERE entity_id = ?)"
_WITH_KIND = "items.id IN (SELECT item_id FROM item_entities WHERE kind = ?)"


@dataclass(frozen=True)
class SearchPlan:
    fts: str | None  # the FTS5 expression (tsquery: `pg`) every result matches, if any text
    filters: tuple[_Filter, ...]  # everything else, ANDed
    pg: bool = False  # planned for PostgreSQL

    def where(self, *, row_by_row: bool) -> tuple[str, list[object]]:
        """The WHERE clause and its parameters; `row_by_row` tests the text per item (SQLite)."""
        parts = list(self.filters)
        if self.fts is not None:
            test = _IN_TS if self.pg else _EACH_FTS if row_by_row else _IN_FTS
            parts.insert(0, (test, [self.fts]))
        where = " AND ".join(sql for sql, _ in parts) or "TRUE"  # `1` is no boolean to PostgreSQL
        return where, [value for _, values in parts for value in values]


def search_plan(
    query: str | None,
    since: datetime | None = None,
    feed_id: str | None = None,
    region: str | None = None,
    rule_id: str | None = None,
    tag_feeds: Mapping[str, Sequence[str]] | None = None,
    entity: str | None = None,
    story: int | None = None,
    *,
    pg: bool = False,
) -> SearchPlan:
    """Parse `query` (raises SearchQueryError) and plan the search with the other filters,
    for PostgreSQL if `pg`."""
    tree = parse_search(query)
    text = _Text(pg)
    fts, filters = _split(tree, _folded_tags(tag_feeds), text) if tree is not None else (None, [])
    options: list[tuple[str, object]] = [
        ("items.published >= ?", _ts(since)),
        ("items.feed_id = ?", feed_id),
        (_IN_REGION, region and region.upper()),
        (_WITH_ENTITY, entity),
        ("items.id IN (SELECT item_id FROM matches WHERE rule_id = ?)", rule_id),
        ("items.id IN (SELECT item_id FROM story_links WHERE story_id = ?)", story),
    ]
    filters += [(sql, [value]) for sql, value in options if value is not None]
    return SearchPlan(fts=fts, filters=tuple(filters), pg=pg)


class _Text:
    """The text part of a search in one backend's words: an FTS5 expression and the SQL that
    tests it, or a tsquery and its SQL. Which parts are text is decided by `fts_expr` alone,
    so a search splits the same way on both backends."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        self.within = _IN_TS if pg else _IN_FTS

    def expr(self, node: Node) -> str | None:
        fts = fts_expr(node)
        return ts_expr(node) if self.pg and fts is not None else fts


def _folded_tags(tag_feeds: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """Tag -> feed ids, tags compared without case as the rule engine does."""
    out: dict[str, list[str]] = {}
    for tag, feeds in (tag_feeds or {}).items():
        out.setdefault(tag.casefold(), []).extend(feeds)
    return out


def _split(tree: Node, tags: dict[str, list[str]], text: _Text) -> tuple[str | None, list[_Filter]]:
    """The text all results must contain (one FTS5 expression) and the SQL for the rest.

    The top-level AND is split: its text parts (with their NOTs) go to FTS5 together, its
    scopes to SQL. Anything else that mixes the two is SQL throughout (`_sql`).
    """
    whole = text.expr(tree)
    if whole is not None:
        return whole, []
    parts = tree.children if isinstance(tree, And) else (tree,)
    words = [p for p in parts if fts_expr(p.child if isinstance(p, Not) else p) is not None]
    rest = [p for p in parts if p not in words]
    if not any(not isinstance(p, Not) for p in words):
        words, rest = [], list(parts)  # FTS5 cannot take NOTs alone: SQL negates them
    fts = text.expr(words[0] if len(words) == 1 else And(tuple(words))) if words else None
    return fts, [_sql(p, tags, text) for p in rest]


def _sql(node: Node, tags: dict[str, list[str]], text: _Text) -> _Filter:
    """`node` as a SQL condition on `items`."""
    fts = text.expr(node)
    if fts is not None:
        return text.within, [fts]
    if isinstance(node, And | Or):
        parts = [_sql(child, tags, text) for child in node.children]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(s for s, _ in parts) + ")", [v for _, vs in parts for v in vs]
    if isinstance(node, Not):
        inner, values = _sql(node.child, tags, text)
        return f"NOT ({inner})", values
    if isinstance(node, Region):
        return _IN_REGION, [node.code.upper()]
    if isinstance(node, EntityScope):
        return (_WITH_KIND, [node.kind]) if node.kind else (_WITH_ENTITY, [node.id])
    if isinstance(node, FeedScope):
        return "items.feed_id = ?", [node.id]
    if isinstance(node, Tag):
        feeds = json.dumps(tags.get(node.name.casefold(), []))
        return "items.feed_id IN (SELECT value FROM json_each(?))", [feeds]
    if isinstance(node, Lang):
        # `zh` is also `zh-tw`; stored tags are lower case with hyphens (normalize.py).
        return "(items.lang = ? OR substr(items.lang, 1, ?) = ?)", [
            node.code,
            len(node.code) + 1,
            node.code + "-",
        ]
    # Only a NEAR gets here: one inside another, or over too many alternatives.
    message = "a NEAR inside a NEAR, or over more than 64 pairs of alternatives, cannot be searched"
    hint = "try it on stored items as a rule: `monitor rules test --since 30d`"
    raise SearchQueryError(message, hint=hint)

"""The WHERE clause of `Store.search`: what a query, a date, a feed, a region or a rule narrows
the items to.

Apart from `core` because it is the search syntax, not storage. The text of a query becomes
FTS5 expressions (`ftsquery`), its scopes (`region:`, `feed:`, `tag:`, `lang:`) plain SQL.
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
from monitor.store.rows import _ts

_Filter = tuple[str, list[object]]  # a WHERE clause fragment with its parameters

_IN_FTS = "items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)"
# The same test made row by row: lets SQLite walk the items newest first and stop at LIMIT.
_EACH_FTS = (
    "EXISTS (SELECT 1 FROM items_fts WHERE items_fts MATCH ? AND items_fts.rowid = items.id)"
)
_IN_REGION = "items.id IN (SELECT item_id FROM item_regions WHERE code = ?)"
_WITH_ENTITY = "items.id IN (SELECT item_id FROM item_entities WHERE entity_id = ?)"
_WITH_KIND = "items.id IN (SELECT item_id FROM item_entities WHERE kind = ?)"


@dataclass(frozen=True)
class SearchPlan:
    fts: str | None  # the FTS5 expression every result matches, if the query has text
    filters: tuple[_Filter, ...]  # everything else, ANDed

    def where(self, *, row_by_row: bool) -> tuple[str, list[object]]:
        """The WHERE clause and its parameters; `row_by_row` tests the text per item."""
        parts = list(self.filters)
        if self.fts is not None:
            parts.insert(0, (_EACH_FTS if row_by_row else _IN_FTS, [self.fts]))
        where = " AND ".join(sql for sql, _ in parts) or "1"
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
) -> SearchPlan:
    """Parse `query` (raises SearchQueryError) and plan the search with the other filters."""
    tree = parse_search(query)
    fts, filters = _split(tree, _folded_tags(tag_feeds)) if tree is not None else (None, [])
    options: list[tuple[str, object]] = [
        ("items.published >= ?", _ts(since)),
        ("items.feed_id = ?", feed_id),
        (_IN_REGION, region and region.upper()),
        (_WITH_ENTITY, entity),
        ("items.id IN (SELECT item_id FROM matches WHERE rule_id = ?)", rule_id),
        ("items.id IN (SELECT item_id FROM story_links WHERE story_id = ?)", story),
    ]
    filters += [(sql, [value]) for sql, value in options if value is not None]
    return SearchPlan(fts=fts, filters=tuple(filters))


def _folded_tags(tag_feeds: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """Tag -> feed ids, tags compared without case as the rule engine does."""
    out: dict[str, list[str]] = {}
    for tag, feeds in (tag_feeds or {}).items():
        out.setdefault(tag.casefold(), []).extend(feeds)
    return out


def _split(tree: Node, tags: dict[str, list[str]]) -> tuple[str | None, list[_Filter]]:
    """The text all results must contain (one FTS5 expression) and the SQL for the rest.

    The top-level AND is split: its text parts (with their NOTs) go to FTS5 together, its
    scopes to SQL. Anything else that mixes the two is SQL throughout (`_sql`).
    """
    whole = fts_expr(tree)
    if whole is not None:
        return whole, []
    parts = tree.children if isinstance(tree, And) else (tree,)
    text = [p for p in parts if fts_expr(p.child if isinstance(p, Not) else p) is not None]
    rest = [p for p in parts if p not in text]
    if not any(not isinstance(p, Not) for p in text):
        text, rest = [], list(parts)  # FTS5 cannot take NOTs alone: SQL negates them
    fts = fts_expr(text[0] if len(text) == 1 else And(tuple(text))) if text else None
    return fts, [_sql(p, tags) for p in rest]


def _sql(node: Node, tags: dict[str, list[str]]) -> _Filter:
    """`node` as a SQL condition on `items`."""
    fts = fts_expr(node)
    if fts is not None:
        return _IN_FTS, [fts]
    if isinstance(node, And | Or):
        parts = [_sql(child, tags) for child in node.children]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(s for s, _ in parts) + ")", [v for _, vs in parts for v in vs]
    if isinstance(node, Not):
        inner, values = _sql(node.child, tags)
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

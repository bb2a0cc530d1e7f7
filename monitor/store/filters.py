"""The WHERE clause of `Store.search`: one fragment and one parameter per filter given.

Apart from `core` because it is the search syntax, not storage: what a query, a date, a feed,
a region or a rule narrows the items to. The FTS5 side of it is `ftsquery`.
"""

from __future__ import annotations

from datetime import datetime

from monitor.store.ftsquery import fts_query
from monitor.store.rows import _ts

# --- search syntax -----------------------------------------------------------------------


_Filter = tuple[str, object]  # a WHERE clause fragment with one parameter


def _filters(
    query: str | None,
    since: datetime | None,
    feed_id: str | None,
    region: str | None,
    rule_id: str | None = None,
) -> list[_Filter]:
    candidates = [
        ("items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)", fts_query(query)),
        ("items.published >= ?", _ts(since)),
        ("items.feed_id = ?", feed_id),
        (
            "items.id IN (SELECT item_id FROM item_regions WHERE code = ?)",
            region and region.upper(),
        ),
        ("items.id IN (SELECT item_id FROM matches WHERE rule_id = ?)", rule_id),
    ]
    return [(sql, value) for sql, value in candidates if value is not None]

"""The store stage: the only package that speaks SQL.

`core` holds the `Store` (feeds' state, items, matches), `schema` the migrations, `filters` and
`ftsquery` the translation of a user's search (the rule query language) into SQL and FTS5
(`pgtext`: PostgreSQL's tsvectors and tsqueries, with the same results),
`details` the whole story of one item (`monitor items show`), `stories` (with `storyrows`)
each item's story and the stories' aggregates (`Store` methods), `storysent` what each route was
sent of each story, `surges` the counts surge detection reads and the surges that fired,
`cluster` what several instances on one database claim (feed leases, live instances, cron
periods).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.store.core import BUSY_TIMEOUT, Store
    from monitor.store.saving import Enrich
    from monitor.store.schema import MIGRATIONS

__all__ = ["BUSY_TIMEOUT", "MIGRATIONS", "Enrich", "Store"]
# Loaded on first use: a command that never opens the database (`monitor --help`, `feeds add`)
# does not pay for sqlite-utils.
__getattr__ = exports(
    __name__,
    {"BUSY_TIMEOUT": "core", "Enrich": "saving", "Store": "core", "MIGRATIONS": "schema"},
)

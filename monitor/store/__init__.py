"""The store stage: the only package that speaks SQL.

`core` holds the `Store` (feeds' state, items, matches), `schema` the migrations, `filters` and
`ftsquery` the translation of a user's search (the rule query language) into SQL and FTS5,
`details` the whole story of one item (`monitor items show`).
"""

from monitor.store.core import BUSY_TIMEOUT, Enrich, Store
from monitor.store.schema import MIGRATIONS

__all__ = ["BUSY_TIMEOUT", "MIGRATIONS", "Enrich", "Store"]

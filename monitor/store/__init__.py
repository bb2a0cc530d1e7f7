"""The store stage: the only package that speaks SQL.

`core` holds the `Store` (feeds' state, items, matches), `schema` the migrations, `ftsquery`
the translation of a user's search into an FTS5 expression.
"""

from monitor.store.core import BUSY_TIMEOUT, Enrich, Store
from monitor.store.schema import MIGRATIONS

__all__ = ["BUSY_TIMEOUT", "MIGRATIONS", "Enrich", "Store"]

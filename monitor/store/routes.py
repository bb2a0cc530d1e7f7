"""Routes whose digest could not be built: the failure is kept per route (`routes` table),
so `monitor status` shows it and the service tries that route again later, while every other
route keeps delivering.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.store.core import Store
from monitor.store.rows import _in_code_order, _ts


@dataclass(frozen=True)
class RouteTrouble:
    """A route whose last attempt to build its digest failed."""

    route_id: str
    failures: int  # in a row
    since: datetime  # the first failure of this run
    last_error: str
    retry_at: datetime | None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value is not None else None


class RouteHealth:
    """The build failures of the routes of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pg = store.backend == "postgresql"  # see `rows._in_code_order`

    def failed(self, route_id: str, error: str, now: datetime, retry_at: datetime) -> None:
        """Record one more failure in a row (the route's row is made if it is new)."""
        with self._store._guard("cannot write to"), self._store._write() as conn:
            conn.execute(
                "INSERT INTO routes (route_id, first_seen, failures, failing_since, last_error,"
                " retry_at) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (route_id) DO UPDATE SET"
                # the stored row by the table's name: bare, PostgreSQL finds it ambiguous
                " failures = routes.failures + 1,"
                " failing_since = coalesce(routes.failing_since, ?),"
                " last_error = excluded.last_error, retry_at = excluded.retry_at",
                (route_id, _ts(now), _ts(now), error, _ts(retry_at), _ts(now)),
            )

    def recovered(self, route_id: str) -> None:
        with self._store._guard("cannot write to"), self._store._write() as conn:
            conn.execute(
                "UPDATE routes SET failures = 0, failing_since = NULL, last_error = NULL,"
                " retry_at = NULL WHERE route_id = ? AND failures > 0",
                (route_id,),
            )

    def troubled(self) -> list[RouteTrouble]:
        """Every route whose last attempt failed, the longest failing first."""
        rows = self._store._rows(
            "SELECT route_id, failures, failing_since, last_error, retry_at FROM routes"
            " WHERE failures > 0 ORDER BY failing_since, route_id"
        )
        return [
            RouteTrouble(
                route_id=r["route_id"],
                failures=int(r["failures"]),
                since=_time(r["failing_since"]) or datetime.now(UTC),
                last_error=r["last_error"] or "unknown error",
                retry_at=_time(r["retry_at"]),
            )
            for r in _in_code_order(rows, "failing_since", "route_id", pg=self._pg)
        ]

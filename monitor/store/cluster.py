"""Several instances on one database: work is claimed, never assumed.

- `Leases`: a poll cycle claims the feeds it found due, polls only those it got, and releases
  each once its poll is stored. A feed is free when its lease ran out (`leased_until`), when
  its holder is a registered instance that stopped beating (dead: no need to wait for the
  lease), or when the caller holds it already. On PostgreSQL the claim locks the rows it
  takes with `FOR UPDATE SKIP LOCKED` and never waits for another instance's claim; on SQLite
  it is one upsert with `RETURNING` under the write lock. The rows live in `feed_leases`, not
  in `feeds`: a feed never polled has no `feeds` row.
- `Instances`: each `monitor run` registers itself, beats every tick and leaves on a clean
  stop; it is live while its last beat promised (`live_until`, `LIVE_TICKS` of its own tick).
- `claim_period`: a cron route's digest is frozen once per period, by whichever instance's
  scheduler fires first.

None of these writes take the store's write lock on PostgreSQL (`pg.WRITE_LOCK`): each is
one statement on its own rows, atomic by itself, and a claim must not wait for another
instance's large batch of items. Times are the store's ISO text (`rows._ts`): the instances'
clocks are trusted to agree within a small part of a lease (NTP).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.store.core import Store
from monitor.store.pg import Conn
from monitor.store.rows import _ts

LIVE_TICKS = 3  # an instance not seen for this many of its ticks is dead
PERIODS_KEPT = timedelta(days=7)  # claimed cron periods are forgotten after this
ENV_INSTANCE = "MONITOR_INSTANCE"


def instance_id(env: Mapping[str, str] | None = None) -> str:
    """This service's name among the instances: `MONITOR_INSTANCE`, else `<hostname>-<pid>`."""
    given = (os.environ if env is None else env).get(ENV_INSTANCE, "").strip()
    return given or one_shot_id()


def one_shot_id() -> str:
    """The holder name of a one-shot command (`monitor poll`): never `MONITOR_INSTANCE`, which
    names the service of the same machine or container, whose leases are not its own."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Instance:
    """A `monitor run` as it registered, and what it holds now (`Instances.live`)."""

    id: str
    host: str
    pid: int
    started: datetime
    seen: datetime
    version: str
    feeds_held: tuple[str, ...] = field(default=())


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@contextmanager
def _tx(store: Store) -> Iterator[Conn]:
    """A short write transaction; on PostgreSQL without the store's write lock (see above)."""
    with store._guard("cannot write to"):
        if store._pg is None:
            with store._write() as conn:
                yield conn
            return
        with store._pg.connection() as pg, pg.raw.transaction():
            yield pg


def _ids(feed_ids: Collection[str]) -> str:
    return json.dumps(sorted(feed_ids))


# SQLite: one upsert under the write lock. A row whose update the WHERE refuses is not
# returned, so what comes back is exactly what this holder got.
_CLAIM_SQLITE = """INSERT INTO feed_leases (feed_id, holder, leased_until)
    SELECT value, ?, ? FROM json_each(?) WHERE TRUE
    ON CONFLICT (feed_id) DO UPDATE
    SET holder = excluded.holder, leased_until = excluded.leased_until
    WHERE feed_leases.holder = excluded.holder OR feed_leases.leased_until <= ?
    OR feed_leases.holder IN (SELECT id FROM instances WHERE live_until < ?)
    RETURNING feed_id"""
# PostgreSQL: rows for new feeds first (free: an empty holder and time), in one order so two
# instances inserting the same new feeds cannot deadlock; then the claim, which skips the
# rows another instance is claiming at this moment instead of waiting for them.
_ENSURE_PG = """INSERT INTO feed_leases (feed_id, holder, leased_until)
    SELECT id, '', '' FROM unnest(%s::text[]) AS id ORDER BY id ON CONFLICT DO NOTHING"""
_CLAIM_PG = """UPDATE feed_leases SET holder = %(me)s, leased_until = %(until)s
    WHERE feed_id IN (SELECT feed_id FROM feed_leases
        WHERE feed_id = ANY(%(ids)s) AND (holder = %(me)s OR leased_until <= %(now)s
            OR holder IN (SELECT id FROM instances WHERE live_until < %(now)s))
        ORDER BY feed_id FOR UPDATE SKIP LOCKED)
    RETURNING feed_id"""


class Leases:
    """The feed leases of one holder (an instance id, or a one-shot command's)."""

    def __init__(self, store: Store, holder: str) -> None:
        self._store = store
        self.holder = holder

    def claim(self, feed_ids: Collection[str], now: datetime, until: datetime) -> set[str]:
        """Lease these feeds until `until`, those that are free; returns the ones taken."""
        if not feed_ids:
            return set()
        pg = self._store._pg
        if pg is None:
            with _tx(self._store) as conn:
                args = (self.holder, _ts(until), _ids(feed_ids), _ts(now), _ts(now))
                return {r[0] for r in conn.execute(_CLAIM_SQLITE, args).fetchall()}
        ids = sorted(feed_ids)
        params = {"me": self.holder, "until": _ts(until), "now": _ts(now), "ids": ids}
        with self._store._guard("cannot write to"), pg.connection() as conn:
            conn.raw.execute(_ENSURE_PG, (ids,))
            return {r[0] for r in conn.raw.execute(_CLAIM_PG, params).fetchall()}

    def renew(self, feed_ids: Collection[str], until: datetime) -> None:
        """Extend the leases still held on these feeds (a long cycle keeps its feeds)."""
        if feed_ids:
            self._set(feed_ids, until)

    def release(self, feed_ids: Collection[str], now: datetime) -> None:
        """The feeds' polls are stored (or abandoned): free for anyone from `now`."""
        if feed_ids:
            self._set(feed_ids, now)

    def _set(self, feed_ids: Collection[str], until: datetime) -> None:
        with _tx(self._store) as conn:
            conn.execute(
                "UPDATE feed_leases SET leased_until = ? WHERE holder = ?"
                " AND feed_id IN (SELECT value FROM json_each(?))",
                (_ts(until), self.holder, _ids(feed_ids)),
            )

    def release_all(self, now: datetime) -> None:
        """Everything this holder still has (a clean stop)."""
        with _tx(self._store) as conn:
            conn.execute(
                "UPDATE feed_leases SET leased_until = ? WHERE holder = ? AND leased_until > ?",
                (_ts(now), self.holder, _ts(now)),
            )

    def fair_share(self, feed_ids: Collection[str], now: datetime) -> set[str]:
        """The feeds of `feed_ids` this holder should try to claim now: a random 1/n of
        them when n instances are live. Without it the first instance to tick after a burst
        (a cold start, feeds of one interval) claims every due feed and the others idle;
        what it leaves stays due, and the next ticks of every instance share it out."""
        rows = self._store._rows(
            "SELECT count(*) AS n FROM instances WHERE live_until >= ? OR id = ?",
            (_ts(now), self.holder),
        )
        live = max(1, int(rows[0]["n"]))
        ordered = sorted(feed_ids)
        return set(random.sample(ordered, math.ceil(len(ordered) / live)))

    def count(self, now: datetime) -> int:
        """How many feeds this holder has now."""
        rows = self._store._rows(
            "SELECT count(*) AS n FROM feed_leases WHERE holder = ? AND leased_until > ?",
            (self.holder, _ts(now)),
        )
        return int(rows[0]["n"])

    def holders(self, feed_ids: Collection[str], now: datetime) -> dict[str, str]:
        """Who else holds these feeds now: feed id -> holder (for saying why one was left)."""
        rows = self._store._rows(
            "SELECT feed_id, holder FROM feed_leases WHERE holder != ? AND leased_until > ?"
            " AND feed_id IN (SELECT value FROM json_each(?))",
            (self.holder, _ts(now), _ids(feed_ids)),
        )
        return {r["feed_id"]: r["holder"] for r in rows}


class Instances:
    """The `monitor run` processes on the database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def register(self, me: Instance, live_until: datetime, forget_before: datetime) -> None:
        """Announce `me` (again, after a restart under the same id); instances dead since
        before `forget_before` are forgotten."""
        with _tx(self._store) as conn:
            conn.execute("DELETE FROM instances WHERE live_until < ?", (_ts(forget_before),))
            conn.execute(
                "INSERT INTO instances (id, host, pid, started, seen, live_until, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " host = excluded.host, pid = excluded.pid, started = excluded.started,"
                " seen = excluded.seen, live_until = excluded.live_until,"
                " version = excluded.version",
                (me.id, me.host, me.pid, _ts(me.started), _ts(me.seen), _ts(live_until),
                 me.version),
            )  # fmt: skip

    def beat(self, me: Instance, now: datetime, live_until: datetime) -> None:
        """`me` is alive at `now`; registers it again if its row went (forgotten as dead
        while the machine was suspended, say)."""
        with _tx(self._store) as conn:
            cursor = conn.execute(
                "UPDATE instances SET seen = ?, live_until = ? WHERE id = ?",
                (_ts(now), _ts(live_until), me.id),
            )
            updated = cursor.rowcount
        if updated == 0:
            self.register(replace(me, seen=now), live_until, now - PERIODS_KEPT)

    def leave(self, instance: str, now: datetime) -> None:
        """A clean stop: the instance and its leases go."""
        Leases(self._store, instance).release_all(now)
        with _tx(self._store) as conn:
            conn.execute("DELETE FROM instances WHERE id = ?", (instance,))

    def live(self, now: datetime) -> list[Instance]:
        """The live instances, by id, each with the feeds it holds now."""
        rows = self._store._rows(
            "SELECT * FROM instances WHERE live_until >= ? ORDER BY id", (_ts(now),)
        )
        held: dict[str, list[str]] = {}
        for lease in self._store._rows(
            "SELECT feed_id, holder FROM feed_leases WHERE leased_until > ? ORDER BY feed_id",
            (_ts(now),),
        ):
            held.setdefault(lease["holder"], []).append(lease["feed_id"])
        return [_instance(r, tuple(held.get(r["id"], ()))) for r in rows]


def _instance(row: dict[str, Any], held: tuple[str, ...]) -> Instance:
    return Instance(
        id=row["id"],
        host=row["host"],
        pid=int(row["pid"]),
        started=_time(row["started"]),
        seen=_time(row["seen"]),
        version=row["version"],
        feeds_held=held,
    )


def claim_period(store: Store, route_id: str, period: datetime, holder: str, now: datetime) -> bool:
    """Claim a cron route's period (the fire time its schedule reached): True for the first
    instance to ask, False for any other. Periods older than `PERIODS_KEPT` are forgotten."""
    with _tx(store) as conn:
        conn.execute(
            "DELETE FROM digest_periods WHERE route_id = ? AND period < ?",
            (route_id, _ts(now - PERIODS_KEPT)),
        )
        rows = conn.execute(
            "INSERT OR IGNORE INTO digest_periods (route_id, period, instance, claimed)"
            " VALUES (?, ?, ?, ?) RETURNING route_id",
            (route_id, _ts(period), holder, _ts(now)),
        ).fetchall()
    return bool(rows)

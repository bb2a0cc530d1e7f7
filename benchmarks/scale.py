"""Scale-out benchmark: several `monitor run` instances on one PostgreSQL database polling the
poll benchmark's farm, beside one instance on SQLite, in the same run.

Run from the repository root (a full run takes several minutes on two cores):

    python -m benchmarks.scale                  # 1,000 feeds x 30 items, 3 instances, 3 runs
    python -m benchmarks.scale --feeds 20 --items 3 --runs 1   # a quick check

Each run, for each setup (3 instances on a new PostgreSQL database, 1 instance on a new SQLite
file): a cold poll, the instances started on an empty database and timed until every feed is
stored (their start-up included, and printed apart); then, after a restart and once every
instance is up, a warm poll, every feed made due at once and timed until all are polled again
(the farm answers 304). How the feeds were shared out is read from each instance's cycle log
lines; CPU from /proc (the instances with their parse workers, the PostgreSQL server with its
backends); the database's work from pg_stat_database, read once the instances have stopped (a
backend sends its counts when it exits). Medians of the runs; `--runs 1` shows one.

The benchmark starts its own throwaway PostgreSQL cluster (tests/support/pgcluster.py) with the
server's durable defaults (fsync on), and its own farm process (benchmarks/_farm.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import platform
import queue
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._farm import Farm
from monitor.store import Store
from monitor.store.saving import FeedSave
from tests.support.pgcluster import Cluster, server_url, start_cluster
from tests.support.procs import descendants
from tests.support.service import RunningService

PHASE_TIMEOUT = 900.0  # seconds: far beyond a cold poll of 10,000 feeds here
CYCLE = re.compile(r"poll cycle: (\d+) feeds")
CLK = os.sysconf("SC_CLK_TCK")
PG_COUNTERS = (
    "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched",
    "tup_inserted", "tup_updated", "tup_deleted", "deadlocks",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Options:
    feeds: int
    items: int
    runs: int
    instances: int
    tick: float


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--feeds", type=int, default=1000, help="feeds in the farm (default 1000)")
    p.add_argument("--items", type=int, default=30, help="items per feed (default 30)")
    p.add_argument("--runs", type=int, default=3, help="runs, medians shown (default 3)")
    p.add_argument("--instances", type=int, default=3, help="instances on PostgreSQL (3)")
    p.add_argument("--tick", type=float, default=1.0, help="the instances' --tick (1.0 s)")
    a = p.parse_args(argv)
    if min(a.feeds, a.items, a.runs, a.instances) < 1 or a.tick <= 0:
        p.error("--feeds, --items, --runs, --instances must be at least 1, --tick above 0")
    return Options(a.feeds, a.items, a.runs, a.instances, a.tick)


# --- measuring -------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, those it already reaped included."""
    total = 0
    for member in [pid, *descendants(pid)]:
        fields = _stat(member)
        if fields:  # utime, stime, cutime, cstime
            total += sum(int(f) for f in fields[11:15])
    return total / CLK


@dataclasses.dataclass(frozen=True)
class Phase:
    wall: float  # seconds until every feed was polled
    start: float  # of which: seconds until the last instance was up (cold only)
    shares: tuple[int, ...]  # feeds polled by each instance
    cpu: tuple[float, ...]  # CPU seconds of each instance (with its workers) in the phase
    pg_cpu: float  # CPU seconds of the PostgreSQL server during the phase (0 on SQLite)
    pg: dict[str, int]  # pg_stat_database counters during the phase ({} on SQLite)


class Setup:
    """Instances on one database: started, watched through their log lines, stopped."""

    def __init__(self, root: Path, db: str | Path, count: int, farm: Farm, o: Options) -> None:
        self.db, self.o = db, o
        self.rules = [self._rules(root / f"i{n}", farm) for n in range(count)]
        self.services: list[RunningService] = []
        self.polled: list[int] = []

    def _rules(self, folder: Path, farm: Farm) -> Path:
        (folder / "alerts").mkdir(parents=True)
        # One host serves the whole farm: its per-host limit is the overall one, as in
        # benchmarks/poll.py, or it alone would set the pace.
        feeds = "".join(
            f"  - id: farm-{i:04d}\n    url: {farm.url(i)}\n    interval: 1h\n"
            for i in range(self.o.feeds)
        )
        text = f"settings:\n  per_host: 32\nfeeds:\n{feeds}"
        (folder / "feeds.yaml").write_text(text, encoding="utf-8")
        return folder

    def start(self) -> float:
        """Start every instance at once; seconds until the last one is up."""
        t0 = time.perf_counter()

        def one(n: int) -> RunningService:
            env = {"MONITOR_INSTANCE": f"instance-{n + 1}"}
            return RunningService(self.rules[n], self.db, tick=self.o.tick, env=env)

        with concurrent.futures.ThreadPoolExecutor(len(self.rules)) as pool:
            self.services = list(pool.map(one, range(len(self.rules))))
        self.polled = [0] * len(self.services)
        return time.perf_counter() - t0

    def _drain(self) -> None:
        for n, service in enumerate(self.services):
            while True:
                try:
                    line = service.lines.get_nowait()
                except queue.Empty:
                    break
                service.seen.append(line)
                if found := CYCLE.search(line):
                    self.polled[n] += int(found.group(1))

    def wait_polled(self, feeds: int) -> None:
        """Until the instances' cycle lines add up to every feed (no query of our own would
        then count as the database's load)."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        while True:
            self._drain()
            if sum(self.polled) >= feeds:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark aborted: only {sum(self.polled)} of {feeds} polled")
            time.sleep(0.05)

    def cpu(self) -> tuple[float, ...]:
        return tuple(tree_cpu(s.proc.pid) for s in self.services)

    def stop(self) -> None:
        codes = [s.stop() for s in self.services]
        if any(codes):
            raise SystemExit(f"benchmark aborted: an instance exited with {codes}")


class Server:
    """The PostgreSQL cluster's CPU and one database's counters."""

    def __init__(self, cluster: Cluster | None, database: str | None) -> None:
        self.cluster, self.database = cluster, database

    def cpu(self) -> float:
        pid = self.cluster.postmaster_pid() if self.cluster else None
        return tree_cpu(pid) if pid else 0.0

    def counters(self) -> dict[str, int]:
        if self.cluster is None:
            return {}
        import psycopg

        with psycopg.connect(self.cluster.dsn) as conn:
            row = conn.execute(
                f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = %s",
                [self.database],
            ).fetchone()
        assert row is not None
        return dict(zip(PG_COUNTERS, (int(v) for v in row), strict=True))


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def cold(setup: Setup, server: Server) -> Phase:
    pg_before, pg_cpu = server.counters(), server.cpu()
    t0 = time.perf_counter()
    start = setup.start()
    setup.wait_polled(setup.o.feeds)
    wall, cpu = time.perf_counter() - t0, setup.cpu()  # start-up included
    pg_cpu = server.cpu() - pg_cpu
    setup.stop()
    shares = tuple(setup.polled)
    return Phase(wall, start, shares, cpu, pg_cpu, _delta(server.counters(), pg_before))


def make_due(db: str | Path) -> None:
    """Every feed due now, in one batch (the instances see them due together)."""
    now = datetime.now(UTC)
    with Store(db) as store:
        saves = [
            FeedSave(fid, (), dataclasses.replace(state, next_due=now))
            for fid, state in store.states().items()
        ]
        store.save_batch(saves)


def warm(setup: Setup, server: Server) -> Phase:
    setup.start()
    pg_before, pg_cpu, cpu = server.counters(), server.cpu(), setup.cpu()
    t0 = time.perf_counter()
    make_due(setup.db)
    setup.wait_polled(setup.o.feeds)
    wall = time.perf_counter() - t0
    cpu = tuple(after - before for after, before in zip(setup.cpu(), cpu, strict=True))
    pg_cpu = server.cpu() - pg_cpu
    setup.stop()
    shares = tuple(setup.polled)
    return Phase(wall, 0.0, shares, cpu, pg_cpu, _delta(server.counters(), pg_before))


# --- the report ------------------------------------------------------------------------------

Runs = list[tuple[Phase, Phase]]  # (cold, warm) per run


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _phase_line(label: str, phases: Sequence[Phase]) -> list[str]:
    def pick(f: Callable[[Phase], float]) -> float:
        return _median([f(p) for p in phases])

    lines = [
        f"  {label}: {pick(lambda p: p.wall):.2f} s wall"
        + (f" (start-up {pick(lambda p: p.start):.2f} s of it)" if phases[0].start else "")
        + f"; CPU {pick(lambda p: sum(p.cpu)):.2f} s in the instances",
        "    feeds per instance, each run: " + "; ".join(
            " / ".join(str(n) for n in p.shares) for p in phases
        ),
        "    CPU-s per instance, each run: " + "; ".join(
            " / ".join(f"{c:.1f}" for c in p.cpu) for p in phases
        ),
    ]  # fmt: skip
    if phases[0].pg:
        pg = {k: _median([p.pg[k] for p in phases]) for k in PG_COUNTERS}
        lines.append(
            f"    PostgreSQL: CPU {pick(lambda p: p.pg_cpu):.2f} s; {pg['xact_commit']:,.0f}"
            f" commits, {pg['xact_rollback']:,.0f} rollbacks; blocks {pg['blks_hit']:,.0f} hit,"
            f" {pg['blks_read']:,.0f} read; tuples {pg['tup_returned']:,.0f} returned,"
            f" {pg['tup_fetched']:,.0f} fetched, {pg['tup_inserted']:,.0f} inserted,"
            f" {pg['tup_updated']:,.0f} updated, {pg['tup_deleted']:,.0f} deleted;"
            f" {pg['deadlocks']:,.0f} deadlocks"
        )
    return lines


def report(o: Options, results: dict[str, Runs]) -> str:
    lines = []
    for kind, runs in results.items():
        lines.append(kind)
        lines += _phase_line("cold", [c for c, _ in runs])
        lines += _phase_line("warm", [w for _, w in runs])
    pg, lite = results["postgresql"], results["sqlite"]
    for i, name in enumerate(("cold", "warm")):
        ratio = _median([p[i].wall for p in pg]) / max(_median([s[i].wall for s in lite]), 1e-9)
        lines.append(f"{name}: {o.instances} instances on PostgreSQL took {ratio:.2f}x the wall"
                     " time of 1 instance on SQLite")  # fmt: skip
    lines.append(
        "warm figures include the one batch that made every feed due (an update of each"
        " feed's row) and the instances' start-up queries"
    )
    return "\n".join(lines)


def one_setup(kind: str, run: int, cluster: Cluster, farm: Farm, o: Options) -> tuple[Phase, Phase]:
    with tempfile.TemporaryDirectory(prefix="monitor-scale-") as tmp:
        if kind == "postgresql":
            name = f"scale_{os.getpid()}_{run}"
            db: str | Path = server_url(cluster.dsn, name)
            server, count = Server(cluster, name), o.instances
        else:
            db, server, count = Path(tmp) / "state" / "monitor.db", Server(None, None), 1
        setup = Setup(Path(tmp), db, count, farm, o)
        return cold(setup, server), warm(setup, server)


def main(argv: Sequence[str] | None = None) -> int:
    o = parse_args(argv)
    print(
        f"scale-out: {o.feeds} feeds x {o.items} items, {o.instances} instances on PostgreSQL"
        f" against 1 on SQLite, {o.runs} run(s), tick {o.tick:g} s; {os.cpu_count()} cores,"
        f" load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}",
        flush=True,
    )
    results: dict[str, Runs] = {"postgresql": [], "sqlite": []}
    cluster = start_cluster(settings={"max_connections": "200"})  # durable defaults otherwise
    try:
        with Farm(o.feeds, o.items) as farm:
            for run in range(o.runs):
                # Taken in turns, so neither setup always meets the warmer machine.
                kinds = ["postgresql", "sqlite"] if run % 2 == 0 else ["sqlite", "postgresql"]
                for kind in kinds:
                    results[kind].append(one_setup(kind, run, cluster, farm, o))
                    c, w = results[kind][-1]
                    print(f"run {run + 1} {kind}: cold {c.wall:.2f} s, warm {w.wall:.2f} s,"
                          f" shares {c.shares} / {w.shares}", flush=True)  # fmt: skip
    finally:
        cluster.stop()
    print(report(o, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

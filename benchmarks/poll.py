"""Poll benchmark: a cold and a warm poll of a local farm of feeds, and where the time goes.

Run from the repository root (a full run takes a few minutes on two cores):

    python -m benchmarks.poll                 # 1,000 feeds x 30 items, 3 runs, medians
    python -m benchmarks.poll --feeds 50      # a quick check
    python -m benchmarks.poll --profile 25    # also: the 25 costliest functions of a cold poll
    python -m benchmarks.poll --compare       # also: rss2email and reader on the same farm
    python -m benchmarks.poll --rules rules --no-link  # also: cold polls without story linking

A cold poll starts from an empty database (every feed is fetched, parsed, normalised and
stored); a warm poll reuses that database with `force=True`, so every feed is fetched again
and the farm answers 304. Both go through `poll_cycle` as `monitor poll` does, worker processes
included, but without a rule set: region tagging and rule matching are the match benchmark's.
The breakdown then times each stage alone, on one core, in this process.

Wall time is what the targets are about; CPU time is printed next to it because it hardly
moves when something else on the machine competes for the cores, which wall time does ("CPU
workers" is that of every process the fork server started: the parse workers and, in a cycle
with a full batch of items to link, the linking process; so are the "worker" memory rows). Peak
memory is read before the breakdown, which holds every body at once. The target is judged on
the peak of the summed PSS of every process of the poll (this one, the fork server and its
workers; not the farm): the memory they take together, each shared page counted once. The
sum of each one's peak RSS is printed too, as an upper bound.

Each cold poll's stories are counted (and the largest named): a cycle of more than one batch
of items is linked batch by batch in the order the fetches finished, so the stories, and what
linking them costs, differ from run to run.

The farm (see `_farm.py`) serves every feed from 127.0.0.1, i.e. one host: the per-host limit
is raised to the overall concurrency, or it alone would set the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TypeVar
from unittest import mock

import monitor.ingest.poll as ingest_poll
from benchmarks._compare import Figures, ToolResult, compare, report
from benchmarks._farm import Farm, feed_path, raw_fetch_all
from monitor.ingest.fetch import Fetcher
from monitor.ingest.normalize import normalize
from monitor.ingest.parse import parse
from monitor.ingest.poll import Parser, poll_cycle
from monitor.ingest.writer import MAX_BATCH
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import Feed, FeedState, FetchResult, FetchStatus, Item, Settings
from monitor.store import Store
from monitor.store.saving import FeedSave, Prepared, prepare

TARGET_COLD = 5.0  # seconds, no rule set
TARGET_COLD_RULES = 7.0  # seconds, with --rules
TARGET_WARM = 0.6  # seconds
TARGET_PEAK = 250.0  # MiB, every process of the poll (PSS: shared pages split between them)
TARGET_LINK_RATIO = 1.15  # cold poll with stories linked, over the same poll without
# Figures from the issue, measured on the same farm and machine.
OTHERS = "rss2email 3.14: 49 s cold, 2.6 s warm; reader 3.26: 28 s cold"
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    feeds: int
    items: int
    runs: int
    concurrency: int
    workers: int | None  # None: what `monitor poll` picks
    profile: int  # 0: no profile
    rules: Path | None = None  # tag regions and match these rules at ingest, as the service does
    compare: bool = False  # also poll the farm with rss2email and reader (benchmarks/_compare.py)
    no_link: bool = False  # also a cold poll without story linking each run: what linking costs


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m benchmarks.poll", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add = p.add_argument
    add("--feeds", type=int, default=1000, help="feeds in the farm (default 1000)")
    add("--items", type=int, default=30, help="items per feed (default 30)")
    add("--runs", type=int, default=3, help="cold+warm runs, medians shown (default 3)")
    add("--concurrency", type=int, default=Settings().concurrency, help="requests in flight")
    add("--workers", type=int, default=None, help="parser processes (default: as monitor poll)")
    add("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    add("--rules", type=Path, default=None, help="rules folder: tag and match at ingest too")
    add("--compare", action="store_true", help="also poll with rss2email and reader; ratios")
    add("--no-link", action="store_true", help="also poll cold without linking stories; ratio")
    a = p.parse_args(argv)
    if min(a.feeds, a.items, a.runs, a.concurrency) < 1:
        p.error("--feeds, --items, --runs and --concurrency must be at least 1")
    return Options(
        a.feeds,
        a.items,
        a.runs,
        a.concurrency,
        a.workers,
        a.profile,
        a.rules,
        a.compare,
        a.no_link,
    )


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process
    # CPU seconds of the fork server's processes meanwhile: the parse workers and, in a cycle
    # with a full batch of items to link, the linking process (`monitor.ingest.linkproc`).
    cpu_workers: float = 0.0


TICK = os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, from /proc; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may contain spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _kib(pid: int, name: str, key: str) -> int:
    """A figure in kB of a process's /proc/PID/`name` (`key:` line); 0 if it is gone."""
    try:
        text = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return 0
    line = next((x for x in text.splitlines() if x.startswith(f"{key}:")), f"{key}: 0 kB")
    return int(line.split()[1])


def _peak_kib(pid: int) -> int:
    return _kib(pid, "status", "VmHWM")


def _pss_kib(pid: int) -> int:
    """A process's proportional set size: its own pages, and its share of those it shares
    (the fork server's modules, read-only in every worker forked from it)."""
    return _kib(pid, "smaps_rollup", "Pss")


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (started by any of its threads), from /proc."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


class WorkerWatch:
    """Samples the parse workers' CPU and peak memory while a poll runs.

    Workers are started by multiprocessing's forkserver, so they are not children of this
    process and `RUSAGE_CHILDREN` never sees them: they are found as the children of this
    process's forkserver (its command line says so) and read from /proc every 20 ms. Only
    our own process tree is read: scanning all of /proc that often cost this process more
    CPU than a warm poll on a machine running other tests.
    """

    peak_kib = 0  # the largest worker seen by any watch in this process
    # The most processes the fork server ran at once: the parse workers, and the linking
    # process of a cycle with a full batch to link.
    most_workers = 0
    # The largest sum of PSS over this process and every process it started (the fork server,
    # its workers, the resource tracker) but those `excluded` (the farm), read every 0.1 s.
    peak_pss_kib = 0
    excluded: ClassVar[set[int]] = set()

    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def servers() -> list[int]:
        """The fork servers this process started."""
        found = []
        for pid in _children(os.getpid()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.forkserver" in cmdline:
                found.append(pid)
        return found

    def _sample(self) -> None:
        pids = [w for server in self.servers() for w in _children(server)]
        WorkerWatch.most_workers = max(WorkerWatch.most_workers, len(pids))
        for pid in pids:
            stat = _proc_stat(str(pid))
            if stat is not None:
                self.cpu[pid] = stat[1]
                WorkerWatch.peak_kib = max(WorkerWatch.peak_kib, _peak_kib(pid))

    def _sample_pss(self) -> None:
        tree, at = [os.getpid()], 0
        while at < len(tree):
            tree += [c for c in _children(tree[at]) if c not in WorkerWatch.excluded]
            at += 1
        WorkerWatch.peak_pss_kib = max(WorkerWatch.peak_pss_kib, sum(map(_pss_kib, tree)))

    def _run(self) -> None:
        for tick in itertools.count():
            if self._stop.wait(0.02):
                return
            self._sample()
            if tick % 5 == 0:
                self._sample_pss()

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn: Callable[[], T], *, watch: bool = True) -> tuple[Timing, T]:
    """Run `fn`, timing it, with the CPU of the parse workers it started. With `watch`, the
    workers' memory is sampled meanwhile (`WorkerWatch`); without, nothing runs beside `fn`
    and their CPU is read once they are gone: what the fork server reaped."""
    cpu0 = _own_cpu()
    if not watch:
        reaped0 = _reaped_cpu()
        t0 = time.perf_counter()
        value = fn()
        wall = time.perf_counter() - t0
        workers = sum(cpu - reaped0.get(pid, 0.0) for pid, cpu in _reaped_cpu().items())
        return Timing(wall, _own_cpu() - cpu0, workers), value
    t0 = time.perf_counter()
    with WorkerWatch() as watch_:
        value = fn()
    wall = time.perf_counter() - t0
    return Timing(wall, _own_cpu() - cpu0, sum(watch_.cpu.values())), value


def _reaped_cpu() -> dict[int, float]:
    """CPU seconds of the processes each of this process's fork servers started and reaped
    (a process's times go to its parent's once it has been waited for), by server pid."""
    reaped = {}
    for server in WorkerWatch.servers():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()
            reaped[server] = (int(fields[13]) + int(fields[14])) / TICK
    return reaped


def peak_mib() -> tuple[float, float, float]:
    """Peak RSS of this process, and of the largest parse worker seen; the peak PSS of all
    the poll's processes together."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, WorkerWatch.peak_kib / 1024, WorkerWatch.peak_pss_kib / 1024


# --- the measured polls ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    cold: Timing
    warm: Timing
    unlinked: Timing | None = None  # a cold poll without story linking (--no-link)
    # The reports of each story the cold poll made, most first: a cycle of more than one
    # batch links in stored order, which is the order the fetches finished in.
    stories: tuple[int, ...] = ()


def farm_feeds(farm: Farm) -> list[Feed]:
    return [Feed(id=f"farm-{i:04d}", url=farm.url(i)) for i in range(farm.feeds)]


def checked_poll(
    feeds: Sequence[Feed],
    store: Store,
    settings: Settings,
    *,
    force: bool,
    workers: int | None,
    ruleset: RuleSet | None = None,
    link: bool = True,
) -> None:
    """One `poll_cycle` (worker start-up and shutdown included); exits unless all went well.
    Without `link` the workers do not read what story linking needs either."""
    count = Parser.default_workers(len(feeds)) if workers is None else workers
    parser = Parser(count, link=link)
    try:
        summary = asyncio.run(
            poll_cycle(feeds, store, settings, force=force, parser=parser, ruleset=ruleset)
        )
    finally:
        if parser is not None:
            parser.close()
    expected = FetchStatus.NOT_MODIFIED if force else FetchStatus.OK
    wrong = [o for o in summary.outcomes if o.status is not expected]
    if wrong or len(summary.outcomes) != len(feeds):
        first = f"{wrong[0].feed_id}: {wrong[0].status} {wrong[0].error}" if wrong else "none"
        sys.exit(
            f"benchmark aborted: {len(summary.outcomes)} feeds polled, {len(wrong)} not "
            f"{expected} (first: {first}); the figures would be meaningless"
        )


@contextlib.contextmanager
def stories_unlinked() -> Iterator[None]:
    """Polls inside leave new items unlinked to stories (`poll_cycle` links them alongside)."""

    @contextlib.asynccontextmanager
    async def skip(store: Store, settings: Settings) -> AsyncIterator[None]:
        yield

    with mock.patch.object(ingest_poll, "linking_alongside", skip):
        yield


def cold_unlinked(
    feeds: Sequence[Feed], settings: Settings, workers: int | None, ruleset: RuleSet | None
) -> Timing:
    """A cold poll into an empty database, stories not linked."""
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "u.db") as db,
        stories_unlinked(),
    ):
        cold, _ = timed(
            lambda: checked_poll(
                feeds, db, settings, force=False, workers=workers, ruleset=ruleset, link=False
            )
        )
    return cold


def one_run(
    feeds: Sequence[Feed],
    settings: Settings,
    workers: int | None,
    ruleset: RuleSet | None,
    unlinked_first: bool | None = None,
) -> Run:
    """A cold and a warm poll; with `unlinked_first` not None, a cold poll without linking
    too, before or after them (runs alternate, so neither side always meets a warmer cache)."""
    unlinked = None
    if unlinked_first:
        unlinked = cold_unlinked(feeds, settings, workers, ruleset)
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "b.db") as db,
    ):
        cold, _ = timed(
            lambda: checked_poll(feeds, db, settings, force=False, workers=workers, ruleset=ruleset)
        )
        # Every story has a report: as many as the items is a limit that leaves none out.
        made = db.find_stories(limit=db.count_items())
        stories = tuple(sorted((s.reports for s in made), reverse=True))
        # Not watched: reading every process's memory 50 times a second cost this process
        # ~0.1 CPU-s in a warm poll (0.45 against 0.35-0.39, medians of 6), on the same two cores;
        # its memory is the cold poll's anyway.
        warm, _ = timed(
            lambda: checked_poll(feeds, db, settings, force=True, workers=workers, ruleset=ruleset),
            watch=False,
        )
    if unlinked_first is False:
        unlinked = cold_unlinked(feeds, settings, workers, ruleset)
    return Run(cold, warm, unlinked, stories)


def median_timing(timings: Sequence[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings),
        statistics.median(t.cpu for t in timings),
        statistics.median(t.cpu_workers for t in timings),
    )


# --- where the time goes: each stage alone, one core, this process ---------------------------


@dataclass(frozen=True)
class Stages:
    fetch: Timing
    parse: Timing
    normalize: Timing
    prepare: Timing
    store: Timing
    fetch_304: Timing
    save_state: Timing


async def _fetch_all(
    feeds: Sequence[Feed], settings: Settings, etags: Mapping[str, str | None]
) -> list[FetchResult]:
    async with Fetcher(settings) as fetcher:
        states = [_fresh(f, etags.get(f.id)) for f in feeds]
        return list(await asyncio.gather(*(fetcher.fetch(s.feed_id, s) for s in states)))


def _fresh(feed: Feed, etag: str | None = None) -> FeedState:
    return FeedState(feed_id=feed.id, url=feed.url, configured_url=feed.url, etag=etag)


def stages(feeds: Sequence[Feed], settings: Settings) -> Stages:
    fetch, results = timed(lambda: asyncio.run(_fetch_all(feeds, settings, {})))
    etags = {r.feed_id: r.etag for r in results}
    fetch_304, _ = timed(lambda: asyncio.run(_fetch_all(feeds, settings, etags)))
    pairs = list(zip(feeds, results, strict=True))
    parse_t, parsed = timed(
        lambda: [parse(f.id, r.body or b"", r.headers, r.url) for f, r in pairs]
    )
    now = datetime.now(UTC)
    norm_t, items = timed(
        lambda: [normalize(f, p, r.url, now) for (f, r), p in zip(pairs, parsed, strict=True)]
    )
    prepare_t, prepared = timed(lambda: [[prepare(i) for i in batch] for batch in items])
    store_t, state_t = _store_alone(feeds, items, prepared, etags)
    return Stages(fetch, parse_t, norm_t, prepare_t, store_t, fetch_304, state_t)


def _store_alone(
    feeds: Sequence[Feed],
    items: Sequence[list[Item]],
    prepared: Sequence[list[Prepared]],
    etags: Mapping[str, str | None],
) -> tuple[Timing, Timing]:
    """Every feed's items into a fresh database, then every feed's state, as a cycle writes
    them: `MAX_BATCH` feeds a transaction, with the rows the workers prepared."""
    saves = [
        FeedSave(f.id, batch, _fresh(f), prepared=rows)
        for f, batch, rows in zip(feeds, items, prepared, strict=True)
    ]
    states = [FeedSave(f.id, (), _fresh(f, etags[f.id])) for f in feeds]

    def save_items(store: Store) -> None:
        for start in range(0, len(saves), MAX_BATCH):
            store.save_batch(saves[start : start + MAX_BATCH])

    def save_states(store: Store) -> None:
        for start in range(0, len(states), MAX_BATCH):
            store.save_batch(states[start : start + MAX_BATCH])

    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "s.db") as s,
    ):
        store_t, _ = timed(lambda: save_items(s))
        state_t, _ = timed(lambda: save_states(s))
    return store_t, state_t


def profile_cold(feeds: Sequence[Feed], settings: Settings, top: int) -> str:
    """cProfile of one cold poll with parsing inline (workers=0), so every function shows."""
    profiler = cProfile.Profile()
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "p.db") as db,
    ):
        profiler.enable()
        checked_poll(feeds, db, settings, force=False, workers=0)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- the report ------------------------------------------------------------------------------


def row(label: str, *cells: str, note: str = "") -> str:
    """One aligned line: a label, right-aligned figures, then a free note."""
    widths = (10, 10, 12)
    figures = "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=False))
    return f"  {label:<40}{figures:<32}  {note}".rstrip()


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value:.3f} s"


def judged(label: str, t: Timing, target: float) -> str:
    verdict = "PASS" if t.wall <= target else "MISS"
    cells = (seconds(t.wall), seconds(t.cpu), seconds(t.cpu_workers))
    return row(label, *cells, note=target_note(target, "s", verdict))


def target_note(target: float, unit: str, verdict: str) -> str:
    return f"{f'target <= {target:g} {unit}':<20}{verdict}"


def report_header(o: Options, farm: Farm, settings: Settings, workers: int) -> list[str]:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"poll benchmark: {o.feeds:,} feeds x {o.items} items = {o.feeds * o.items:,} items, "
        f"{farm.size / 1e6:.1f} MB of RSS 2.0; {o.runs} runs, medians",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{load} (1/5/15 min) at the start",
        f"settings: concurrency {settings.concurrency}, per_host {settings.per_host} (raised from "
        f"{Settings().per_host}: all farm feeds are on one host), parser workers {workers}",
        "farm: a separate process on 127.0.0.1, sharing the same cores",
    ]


def farm_alone(farm: Farm, o: Options) -> list[str]:
    """Time the farm serving everything to a raw client: it must not be the bottleneck."""
    paths = [feed_path(i) for i in range(o.feeds)]
    ok = asyncio.run(raw_fetch_all(farm.port, paths, connections=o.concurrency))
    cached = asyncio.run(raw_fetch_all(farm.port, paths, connections=o.concurrency, etags=ok.etags))
    if set(ok.statuses) != {200} or set(cached.statuses) != {304}:
        sys.exit(f"benchmark aborted: the farm answered {set(ok.statuses) | set(cached.statuses)}")
    return [
        f"farm alone, raw keep-alive client ({o.concurrency} connections):",
        row(f"{o.feeds:,} bodies (200)", seconds(ok.seconds)),
        row(f"{o.feeds:,} conditional GETs (304)", seconds(cached.seconds)),
    ]


def report_polls(
    o: Options, runs: Sequence[Run], peaks: tuple[float, float, float], workers: int
) -> list[str]:
    cold = median_timing([r.cold for r in runs])
    warm = median_timing([r.warm for r in runs])
    own, child, pss = peaks
    # An upper bound: the peaks need not coincide, and each process counts the pages it
    # shares with the fork server (modules, libraries) in full.
    most = max(workers, WorkerWatch.most_workers)
    total = own + most * child
    verdict = "PASS" if pss <= TARGET_PEAK else "MISS"
    return [
        "",
        row(
            f"poll_cycle, rules from {o.rules}" if o.rules else "poll_cycle, no rule set",
            "wall",
            "CPU main",
            "CPU workers",
        ),
        judged("cold: empty database", cold, TARGET_COLD_RULES if o.rules else TARGET_COLD),
        judged("warm: every feed 304 (force=True)", warm, TARGET_WARM),
        row("cold items/s", f"{o.feeds * o.items / cold.wall:,.0f}"),
        row("warm feeds/s", f"{o.feeds / warm.wall:,.0f}"),
        row("peak RSS: this process", f"{own:.0f} MiB"),
        row("peak RSS: largest worker", f"{child:.0f} MiB"),
        row(f"peak RSS: process + {most} x worker", f"{total:.0f} MiB", note="upper bound"),
        row(
            "peak PSS: every process of the poll",
            f"{pss:.0f} MiB",
            "",
            "",
            note=target_note(TARGET_PEAK, "MiB", verdict),
        ),
        "  each run, cold / warm wall: "
        + ", ".join(f"{r.cold.wall:.2f} / {r.warm.wall:.2f} s" for r in runs),
        f"  same farm and machine, in the issue: {OTHERS}",
        "  stories each cold poll made (the largest; they differ with the order the fetches "
        "finished in): " + "; ".join(_stories(r.stories) for r in runs),
        *linking_cost(runs),
    ]


def _stories(sizes: Sequence[int]) -> str:
    largest = ", ".join(f"{n:,}" for n in sizes[:3])
    return f"{len(sizes):,} ({largest}{', ...' if len(sizes) > 3 else ''} reports)"


def linking_cost(runs: Sequence[Run]) -> list[str]:
    """The cold poll with stories linked against the same poll without (--no-link)."""
    pairs = [(r.cold, r.unlinked) for r in runs if r.unlinked is not None]
    if not pairs:
        return []
    linked = median_timing([c for c, _ in pairs])
    unlinked = median_timing([u for _, u in pairs])
    wall = statistics.median(c.wall / u.wall for c, u in pairs)
    # Every process's CPU: a cycle with much to link links in a process of its own.
    cpu = statistics.median(_all_cpu(c) / _all_cpu(u) for c, u in pairs)
    verdict = "PASS" if wall <= TARGET_LINK_RATIO else "MISS"
    cells = (seconds(unlinked.wall), seconds(unlinked.cpu), seconds(unlinked.cpu_workers))
    return [
        row("cold, stories not linked (--no-link)", *cells),
        row(
            "cold linked / not linked (CPU: all)",
            f"{wall:.2f}x",
            f"{cpu:.2f}x",
            note=target_note(TARGET_LINK_RATIO, "x", verdict),
        ),
        f"  linking's share: {linked.wall - unlinked.wall:+.2f} s wall, "
        f"{_all_cpu(linked) - _all_cpu(unlinked):+.2f} CPU-s (all processes; medians of "
        f"{len(pairs)} pairs, taken in turns; ratios are medians of each run's own pair)",
    ]


def _all_cpu(t: Timing) -> float:
    return t.cpu + t.cpu_workers


def report_stages(s: Stages, cold: Timing, workers: int, items: int) -> list[str]:
    parts = (s.fetch, s.parse, s.normalize, s.prepare, s.store)
    total = sum(t.cpu for t in parts)
    # In a poll, fetch, parse, normalise and prepare run in the workers and the cycle's own
    # process stores: wall time cannot go below the store's CPU, nor the workers' spread over
    # them, nor all of it spread over the cores.
    worked = s.fetch.cpu + s.parse.cpu + s.normalize.cpu + s.prepare.cpu
    cores = os.cpu_count() or 1
    spread = max(s.store.cpu, worked / max(workers, 1), (worked + s.store.cpu) / cores)

    def stage(label: str, t: Timing) -> str:
        rate = f"{items / t.cpu:,.0f} items per CPU s" if t.cpu else ""
        return row(label, seconds(t.wall), seconds(t.cpu), f"{t.cpu / total:.0%}", note=rate)

    return [
        "",
        row("cold, stage by stage (one core)", "wall", "CPU", "CPU share"),
        stage("fetch (httpx, every body; in the workers)", s.fetch),
        stage("parse", s.parse),
        stage("normalise", s.normalize),
        stage("prepare rows (in the workers)", s.prepare),
        stage(f"store (save_batch, {MAX_BATCH} feeds a commit)", s.store),
        row("sum", "", seconds(total)),
        row(
            f"wall floor with {max(workers, 1)} workers",
            "",
            seconds(spread),
            note=f"the cold poll took {cold.wall:.2f} s wall",
        ),
        "",
        row("warm, stage by stage (one core)", "wall", "CPU"),
        row("fetch (httpx, every feed 304)", seconds(s.fetch_304.wall), seconds(s.fetch_304.cpu)),
        row(
            f"store (states, {MAX_BATCH} feeds a commit)",
            seconds(s.save_state.wall),
            seconds(s.save_state.cpu),
        ),
    ]


def farm_urls(farm: Farm) -> list[str]:
    return [farm.url(i) for i in range(farm.feeds)]


def compared(
    runs: Sequence[Run], others: Sequence[ToolResult], settings: Settings, workers: int
) -> list[str]:
    """monitor's medians against the other tools', CPU of the parse workers included."""
    cold = median_timing([r.cold for r in runs])
    warm = median_timing([r.warm for r in runs])
    how = f"concurrency {settings.concurrency}, {workers} parser workers"
    return report(
        Figures(cold.wall, cold.cpu + cold.cpu_workers),
        Figures(warm.wall, warm.cpu + warm.cpu_workers),
        how,
        others,
    )


def main(argv: Sequence[str] | None = None) -> int:
    o = parse_args(argv)
    settings = Settings(concurrency=o.concurrency, per_host=o.concurrency)
    workers = o.workers if o.workers is not None else Parser.default_workers(o.feeds)
    with Farm(o.feeds, o.items) as farm:
        WorkerWatch.excluded.add(farm.pid)
        header = report_header(o, farm, settings, workers)
        feeds = farm_feeds(farm)
        farm_lines = farm_alone(farm, o)
        ruleset = load_ruleset(o.rules) if o.rules else None
        runs = [
            one_run(feeds, settings, o.workers, ruleset, bool(i % 2) if o.no_link else None)
            for i in range(o.runs)
        ]
        peaks = peak_mib()  # before the breakdown, which holds every body at once
        others = compare(farm_urls(farm), o.items, o.runs) if o.compare else []
        breakdown = stages(feeds, settings)
        profile = profile_cold(feeds, settings, o.profile) if o.profile else ""
    cold = median_timing([r.cold for r in runs])
    out = [
        *header,
        *farm_lines,
        *report_polls(o, runs, peaks, workers),
        *report_stages(breakdown, cold, workers, o.feeds * o.items),
    ]
    if o.compare:
        out += compared(runs, others, settings, workers)
    print("\n".join(out))
    if profile:
        print(
            f"\ncold poll with parsing inline (workers=0), top {o.profile} by cumulative time;"
            " store writes run in a thread, which this profile does not see:\n" + profile
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

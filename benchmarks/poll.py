"""Poll benchmark: a cold and a warm poll of a local farm of feeds, with where the time goes.

Run from the repository root (a full run takes about a minute on two cores):

    python -m benchmarks.poll                 # 1,000 feeds x 30 items, 3 runs, medians
    python -m benchmarks.poll --feeds 50      # a quick check
    python -m benchmarks.poll --profile 25    # also: the 25 costliest functions of a cold poll

A cold poll starts from an empty database (every feed is fetched, parsed, normalised and
stored); a warm poll reuses that database with `force=True`, so every feed is fetched again
and the farm answers 304. Both go through `poll_cycle` exactly as `monitor poll` does, worker
processes included. The breakdown then times each stage alone, on one core, in this process.
Peak memory is recorded before the breakdown, which holds every body at once.

The farm (see `_farm.py`) serves every feed from 127.0.0.1, i.e. one host: the per-host limit
is raised to the overall concurrency, or it alone would set the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from benchmarks._farm import Farm, feed_path, raw_fetch_all
from monitor.fetch import Fetcher
from monitor.models import Feed, FeedState, FetchResult, FetchStatus, Item, Settings
from monitor.normalize import normalize
from monitor.parse import parse
from monitor.poll import Parser, poll_cycle
from monitor.store import Store

TARGET_COLD = 10.0  # seconds
TARGET_WARM = 1.0  # seconds
TARGET_PEAK = 250.0  # MiB, this process plus its workers
# Figures from the issue, measured on the same farm and machine.
OTHERS = "rss2email 3.14: 49 s cold, 2.6 s warm; reader 3.26: 28 s cold"


@dataclass(frozen=True)
class Options:
    feeds: int
    items: int
    runs: int
    concurrency: int
    workers: int | None  # None: what `monitor poll` picks
    profile: int  # 0: no profile


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.poll", description=__doc__.split("\n")[0]
    )
    p.add_argument("--feeds", type=int, default=1000, help="feeds in the farm (default 1000)")
    p.add_argument("--items", type=int, default=30, help="items per feed (default 30)")
    p.add_argument("--runs", type=int, default=3, help="cold+warm runs, medians shown (default 3)")
    p.add_argument(
        "--concurrency", type=int, default=Settings().concurrency, help="requests in flight"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="parser processes (default: as monitor poll)"
    )
    p.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the N costliest functions"
    )
    a = p.parse_args(argv)
    if min(a.feeds, a.items, a.runs, a.concurrency) < 1:
        p.error("--feeds, --items, --runs and --concurrency must be at least 1")
    return Options(a.feeds, a.items, a.runs, a.concurrency, a.workers, a.profile)


# --- the measured polls ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    cold: float  # seconds
    warm: float


def farm_feeds(farm: Farm) -> list[Feed]:
    return [Feed(id=f"farm-{i:04d}", url=farm.url(i)) for i in range(farm.feeds)]


def timed_poll(
    feeds: Sequence[Feed], db: Path, settings: Settings, *, force: bool, workers: int | None
) -> float:
    """Wall time of one `poll_cycle`, worker start-up and shutdown included, checked."""
    with Store(db) as store:
        t0 = time.perf_counter()
        parser = Parser(workers) if workers is not None else None
        try:
            summary = asyncio.run(poll_cycle(feeds, store, settings, force=force, parser=parser))
        finally:
            if parser is not None:
                parser.close()
        seconds = time.perf_counter() - t0
    expected = FetchStatus.NOT_MODIFIED if force else FetchStatus.OK
    wrong = [o for o in summary.outcomes if o.status is not expected]
    if wrong or len(summary.outcomes) != len(feeds):
        first = f"{wrong[0].feed_id}: {wrong[0].status} {wrong[0].error}" if wrong else "none"
        sys.exit(
            f"benchmark aborted: {len(summary.outcomes)} feeds polled, {len(wrong)} not "
            f"{expected} (first: {first}); the figures would be meaningless"
        )
    return seconds


def one_run(feeds: Sequence[Feed], settings: Settings, workers: int | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        cold = timed_poll(feeds, db, settings, force=False, workers=workers)
        warm = timed_poll(feeds, db, settings, force=True, workers=workers)
    return Run(cold, warm)


def peak_mib() -> tuple[float, float]:
    """ru_maxrss (KiB on Linux) of this process and of its largest finished child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


# --- where the cold time goes: each stage alone, one core, this process ----------------------


@dataclass(frozen=True)
class Stages:
    fetch: float
    fetch_304: float
    parse: float
    normalize: float
    store: float


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


async def _fetch_all(feeds: Sequence[Feed], settings: Settings, etags: bool) -> list[FetchResult]:
    async with Fetcher(settings) as fetcher:
        first = await asyncio.gather(*(fetcher.fetch(f.id, _fresh(f)) for f in feeds))
        if not etags:
            return list(first)
        states = [_fresh(f, r.etag) for f, r in zip(feeds, first, strict=True)]
        return list(await asyncio.gather(*(fetcher.fetch(s.feed_id, s) for s in states)))


def _fresh(feed: Feed, etag: str | None = None) -> FeedState:
    return FeedState(feed_id=feed.id, url=feed.url, configured_url=feed.url, etag=etag)


def stages(feeds: Sequence[Feed], settings: Settings) -> Stages:
    fetch, results = _timed(lambda: asyncio.run(_fetch_all(feeds, settings, etags=False)))
    # Second round of the same helper: the 304s alone are its total minus a first round.
    both, _ = _timed(lambda: asyncio.run(_fetch_all(feeds, settings, etags=True)))
    pairs = list(zip(feeds, results, strict=True))
    parse_s, parsed = _timed(
        lambda: [parse(f.id, r.body or b"", r.headers, r.url) for f, r in pairs]
    )
    now = datetime.now(UTC)
    norm_s, items = _timed(
        lambda: [normalize(f, p, r.url, now) for (f, r), p in zip(pairs, parsed, strict=True)]
    )
    store_s = _store_alone(feeds, items)
    return Stages(fetch, both - fetch, parse_s, norm_s, store_s)


def _store_alone(feeds: Sequence[Feed], items: Sequence[list[Item]]) -> float:
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "s.db") as s,
    ):
        t0 = time.perf_counter()
        for feed, batch in zip(feeds, items, strict=True):
            s.save_items(feed.id, batch, _fresh(feed))
        return time.perf_counter() - t0


def profile_cold(feeds: Sequence[Feed], settings: Settings, top: int) -> str:
    """cProfile of one cold poll with parsing inline, so every function shows up."""
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        profiler.enable()
        timed_poll(feeds, Path(tmp) / "p.db", settings, force=False, workers=0)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the report --------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def line(label: str, figure: str, target: str = "", result: str = "") -> str:
    return f"  {label:<36}{figure:>22}  {target:<16}{result}".rstrip()


def report_header(o: Options, farm: Farm, settings: Settings, workers: int) -> list[str]:
    total = o.feeds * o.items
    return [
        f"poll benchmark: {o.feeds:,} feeds x {o.items} items = {total:,} items, "
        f"{farm.size / 1e6:.1f} MB of RSS; {o.runs} runs, medians",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; the farm is "
        "a separate process on 127.0.0.1 (same cores)",
        f"settings: concurrency {settings.concurrency}, per_host {settings.per_host} (raised "
        f"from {Settings().per_host}: every farm feed is on one host), parser workers {workers}",
    ]


def report_farm(cold: float, warm: float, feeds: int, connections: int) -> list[str]:
    return [
        f"farm alone (raw keep-alive client, {connections} connections):",
        line(f"{feeds:,} bodies (200)", f"{cold:.3f} s"),
        line(f"{feeds:,} conditional GETs (304)", f"{warm:.3f} s"),
    ]


def judged(label: str, value: float, unit: str, target: float) -> str:
    """A figure with its target and PASS/MISS."""
    figure = f"{value:6.2f} {unit}" if unit == "s" else f"{value:6.0f} {unit}"
    return line(label, figure, f"target <= {target:g} {unit}", verdict(value, target))


def report_polls(
    o: Options, runs: Sequence[Run], own: float, child: float, workers: int
) -> list[str]:
    cold = statistics.median(r.cold for r in runs)
    warm = statistics.median(r.warm for r in runs)
    total = own + workers * child  # an upper bound: peaks may not coincide
    return [
        "polls (poll_cycle, as `monitor poll` runs it):",
        judged("cold, empty database", cold, "s", TARGET_COLD),
        line("  items/s", f"{o.feeds * o.items / cold:,.0f}"),
        judged("warm, everything 304 (force=True)", warm, "s", TARGET_WARM),
        line("  feeds/s (items/s)", f"{o.feeds / warm:,.0f} ({o.feeds * o.items / warm:,.0f})"),
        line("peak RSS, this process", f"{own:6.0f} MiB"),
        line("peak RSS, largest worker process", f"{child:6.0f} MiB"),
        judged(f"peak RSS, process + {workers} x worker", total, "MiB", TARGET_PEAK),
        "  runs (cold / warm s): " + "  ".join(f"{r.cold:.2f} / {r.warm:.2f}" for r in runs),
        f"  for comparison, same farm and machine: {OTHERS}",
    ]


def report_stages(s: Stages, cold: float, workers: int, items: int) -> list[str]:
    serial = s.fetch + s.parse + s.normalize + s.store
    cpu = s.parse + s.normalize
    # In the poll, parse+normalise run in `workers` processes; fetch and store stay in the loop.
    ideal = s.fetch + s.store + cpu / max(workers, 1)

    def share(label: str, seconds: float) -> str:
        rate = f"{items / seconds:,.0f} items/s" if seconds else ""
        return line(label, f"{seconds:6.2f} s {seconds / serial:4.0%}", rate)

    return [
        "where cold time goes (each stage alone, one core, this process; share of their sum):",
        share("fetch (httpx, every body)", s.fetch),
        share("parse (feedparser)", s.parse),
        share("normalise", s.normalize),
        share("store (save_items, fresh database)", s.store),
        line("sum, one core", f"{serial:6.2f} s"),
        line(
            f"if parse+normalise split over {workers}",
            f"{ideal:6.2f} s",
            f"vs cold poll {cold:.2f} s",
        ),
        line("warm: fetch alone, every feed 304", f"{s.fetch_304:6.2f} s"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    o = parse_args(argv)
    settings = Settings(concurrency=o.concurrency, per_host=o.concurrency)
    workers = o.workers if o.workers is not None else Parser.default_workers(o.feeds)
    with Farm(o.feeds, o.items) as farm:
        feeds = farm_feeds(farm)
        paths = [feed_path(i) for i in range(o.feeds)]
        raw = asyncio.run(raw_fetch_all(farm.port, paths, connections=o.concurrency))
        raw304 = asyncio.run(
            raw_fetch_all(farm.port, paths, connections=o.concurrency, etags=raw.etags)
        )
        runs = [one_run(feeds, settings, o.workers) for _ in range(o.runs)]
        own, child = peak_mib()  # before the breakdown, which holds every body at once
        breakdown = stages(feeds, settings)
        profile = profile_cold(feeds, settings, o.profile) if o.profile else ""
    cold = statistics.median(r.cold for r in runs)
    out = [
        *report_header(o, farm, settings, workers),
        *report_farm(raw.seconds, raw304.seconds, o.feeds, o.concurrency),
        *report_polls(o, runs, own, child, workers),
        *report_stages(breakdown, cold, workers, o.feeds * o.items),
    ]
    print("\n".join(out))
    if profile:
        print(
            f"\ncold poll with parsing inline (workers=0), top {o.profile} by own time:\n{profile}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

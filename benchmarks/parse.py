"""Parse benchmark: items/s of the fast path (lxml) and of feedparser, on the poll farm's feeds.

    python -m benchmarks.parse                      # 200 feeds x 30 items, 3 runs, medians
    python -m benchmarks.parse --feeds 20 --runs 1  # a quick check

The documents are the ones the poll benchmark's farm serves (`_farm.build_feed`: RSS 2.0,
~1 KB HTML descriptions, half CDATA and half escaped, some CJK), built in this process; no
server is involved, only `parse` on one core, as a worker process runs it. Each run parses
every document once with `fast=True` and once with `fast=False`; the figures are the medians
of the runs, and the ratio is fast over feedparser. Both paths must give equal results on
every document, or the benchmark stops: a fast wrong answer is no result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime

from benchmarks._farm import build_feed
from monitor.ingest.charset import decode
from monitor.ingest.fastparse import read_feed
from monitor.ingest.parse import parse
from monitor.models import ParsedFeed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
NOW = datetime(2025, 11, 20, tzinfo=UTC)


def url(index: int) -> str:
    return f"http://127.0.0.1/feeds/{index:04d}.xml"


def run(bodies: list[bytes], *, fast: bool) -> tuple[float, list[ParsedFeed]]:
    """Seconds to parse every body once, and the results."""
    started = time.perf_counter()
    results = [parse("bench", body, HEADERS, url(i), fast=fast) for i, body in enumerate(bodies)]
    return time.perf_counter() - started, results


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--feeds", type=int, default=200)
    args.add_argument("--items", type=int, default=30)
    args.add_argument("--runs", type=int, default=3)
    opts = args.parse_args(argv)
    bodies = [build_feed(i, opts.items, NOW) for i in range(opts.feeds)]
    items = opts.feeds * opts.items
    taken = sum(read_feed(decode(b, HEADERS["content-type"])[0], "") is not None for b in bodies)
    size = sum(map(len, bodies))
    print(f"{opts.feeds} farm feeds x {opts.items} items = {items} items; {size:,} bytes")
    print(f"the fast path takes {taken} of {opts.feeds} documents (the rest fall back)")
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(opts.runs):
        for fast in (True, False):
            seconds, results = run(bodies, fast=fast)
            timings[fast].append(seconds)
            if fast:
                fast_results = results
            elif results != fast_results:
                print("the two paths gave different results: no figures")
                return 1
    fast_rate = items / statistics.median(timings[True])
    slow_rate = items / statistics.median(timings[False])
    print(f"fast path (lxml):  {fast_rate:10,.0f} items/s  (median of {opts.runs})")
    print(f"feedparser:        {slow_rate:10,.0f} items/s  (median of {opts.runs})")
    print(f"ratio:             {fast_rate / slow_rate:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLI benchmarks: how fast `monitor` answers, run as the user runs it (a new process each time).

    python -m benchmarks.cli start                  # `monitor --help`, 5 runs, medians
    python -m benchmarks.cli search                 # `monitor items search` at 300,000 items
    python -m benchmarks.cli search --items 30000 --word taiwan --runs 3
    python -m benchmarks.cli poll                   # `monitor poll --force`, 1,000 farm feeds

`start` times `python -m monitor --help`. `search` first builds a database of generated items
(English with some Chinese, Japanese and Korean, like the poll farm's; built once and kept in
the temporary folder, or at `--db`), then times `monitor items search WORD` on it. Each figure
is the median of the runs: wall seconds, and the CPU seconds of the child process (user +
system), which contention on a shared machine hardly moves.

`poll` serves the poll benchmark's farm (`--feeds` feeds x 30 items, one host, so `per_host`
is raised to 32 in the `feeds.yaml` it writes), polls it once into an empty database, then
times `monitor poll --force` with every feed unchanged (304): the warm poll as a user runs it,
from the command's start to its end, reading `feeds.yaml`, the rules and the states and
starting the workers included; the cycle's own time, which the command prints, beside it.
Its CPU is the command's process alone: the fork server and the workers it starts are not
its children once it has exited, so only the wall time counts there.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._farm import _CJK_PHRASES, _EN_WORDS, Farm
from monitor.models import FeedState, Item
from monitor.store import Store
from monitor.store.saving import FeedSave

FEED_ITEMS = 300  # items per generated feed
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def medians(label: str, argv: list[str], runs: int) -> None:
    timed(argv)  # once to warm the file cache and write the .pyc files
    results = [timed(argv) for _ in range(runs)]
    wall = statistics.median(r[0] for r in results)
    cpu = statistics.median(r[1] for r in results)
    print(f"{label}: {wall:.3f} s wall, {cpu:.3f} CPU-s (medians of {runs})")


def warm_polls(feeds: int, runs: int) -> None:
    """Time `monitor poll --force` on the farm with every feed unchanged (see the docstring)."""
    with Farm(feeds, 30) as farm, tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules"
        (rules / "alerts").mkdir(parents=True)
        lines = ["settings:", "  concurrency: 32", "  per_host: 32", "feeds:"]
        lines += [f"  - url: {farm.url(i)}\n    id: farm-{i:05d}" for i in range(feeds)]
        (rules / "feeds.yaml").write_text("\n".join(lines) + "\n")
        poll = [sys.executable, "-m", "monitor", "--rules", str(rules)]
        poll += ["--db", str(Path(folder) / "monitor.db"), "poll"]
        subprocess.run(poll, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls, cycles = [], []
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run([*poll, "--force"], check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
            found = re.search(
                r"polled (\d+) feeds in ([\d.]+) s: 0 ok, (\d+) not modified", done.stdout
            )
            if found is None or int(found.group(3)) != feeds:
                raise SystemExit(f"not every feed answered 304: {done.stdout}")
            cycles.append(float(found.group(2)))
    each = ", ".join(f"{w:.2f}" for w in walls)
    wall, cycle = statistics.median(walls), statistics.median(cycles)
    print(f"monitor poll --force, {feeds:,} feeds all unchanged: {wall:.3f} s wall (runs: "
          f"{each}); the cycle it prints: {cycle:.1f} s (medians of {runs})")  # fmt: skip


def _text(rng: random.Random, words: int) -> str:
    if rng.random() < 0.15:
        return "。".join(rng.sample(_CJK_PHRASES, 2)) + "。"
    return " ".join(rng.choices(_EN_WORDS, k=words)).capitalize()


def build(db: Path, count: int) -> None:
    """`count` items in feeds of FEED_ITEMS, one published every minute, through the store."""
    rng = random.Random(11)
    store = Store(db)
    try:
        for first in range(0, count, FEED_ITEMS * 20):
            saves = []
            for start in range(first, min(count, first + FEED_ITEMS * 20), FEED_ITEMS):
                feed = f"feed-{start // FEED_ITEMS:04d}"
                items = [_item(rng, feed, n) for n in range(start, min(count, start + FEED_ITEMS))]
                saves.append(FeedSave(feed, items, FeedState(feed, f"https://{feed}.example/")))
            store.save_batch(saves)
    finally:
        store.close()


def _item(rng: random.Random, feed: str, number: int) -> Item:
    when = T0 + timedelta(minutes=number)
    title, summary = _text(rng, 10), f"{_text(rng, 30)}. {_text(rng, 30)}."
    return Item(
        feed_id=feed,
        guid=f"item-{number}",
        link=f"https://{feed}.example/{number}",
        title=title,
        summary=summary,
        html=f"<p>{summary}</p>",
        author=None,
        lang="en",
        published=when,
        first_seen=when,
        content_hash=str(number),
    )


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("what", choices=("start", "search", "poll"))
    args.add_argument("--runs", type=int, default=5)
    args.add_argument("--items", type=int, default=300_000, help="search: items in the database")
    args.add_argument("--word", default="the", help="search: the word (a common one by default)")
    args.add_argument("--db", type=Path, help="search: the database (built if absent)")
    args.add_argument("--feeds", type=int, default=1000, help="poll: feeds in the farm")
    opts = args.parse_args(argv)
    monitor = [sys.executable, "-m", "monitor"]
    if opts.what == "start":
        medians("monitor --help", [*monitor, "--help"], opts.runs)
        return 0
    if opts.what == "poll":
        warm_polls(opts.feeds, opts.runs)
        return 0
    db = opts.db or Path(tempfile.gettempdir()) / f"monitor-bench-search-{opts.items}.db"
    if not db.exists():
        started = time.process_time()
        build(db, opts.items)
        print(f"built {db} ({opts.items:,} items) in {time.process_time() - started:.0f} CPU-s")
    search = [*monitor, "--db", str(db), "--rules", str(db.parent / "no-rules")]
    medians(f"monitor items search {opts.word}", [*search, "items", "search", opts.word], opts.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

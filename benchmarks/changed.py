"""Changed-bodies benchmark: every feed sends its body again, with no new item in it.

Run from the repository root:

    python -m benchmarks.changed                  # 1,000 feeds x 30 items, 3 runs, medians
    python -m benchmarks.changed --rules rules    # tagging and matching too, as the service

A cold poll fills an empty database; then every feed's validators (ETag, Last-Modified, the
body's hash) are forgotten, so the next poll fetches, parses and hands on every body as
changed although it brings nothing new: the steady state at its worst, when feeds send no
validators and each change adds an item or two among thirty. That poll is taken twice each
run, in turns, with the parser (and workers) of the cold poll: once with each feed's state
knowing the items of its last stored body (`monitor/ingest/knownitems.py`), once with that
memory emptied, as before it existed. Stories are not linked (nothing new is stored).

Wall time, CPU of this process, and CPU of the worker processes during the poll.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._farm import Farm
from benchmarks.poll import Timing, _own_cpu, _proc_stat, farm_feeds, seconds, stories_unlinked
from monitor.ingest.poll import Parser, poll_cycle
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import Feed, FetchStatus, Settings
from monitor.store import Store


def _workers_cpu(parser: Parser) -> float:
    stats = (_proc_stat(str(pid)) for pid in parser.worker_pids)
    return sum(stat[1] for stat in stats if stat is not None)


def _forget(store: Store, known_items: bool) -> None:
    """Forget every feed's validators, and with `known_items` what its last body held."""
    sql = "UPDATE feeds SET etag = NULL, last_modified = NULL, body_hash = NULL"
    with store._write() as conn:
        conn.execute(sql + (", known_items = x''" if known_items else ""))


def _poll(
    feeds: Sequence[Feed],
    store: Store,
    settings: Settings,
    parser: Parser,
    ruleset: RuleSet | None,
    expected: FetchStatus = FetchStatus.OK,
) -> Timing:
    """One cycle with `parser` (left running); exits unless every feed gave `expected`."""
    before, cpu0, t0 = _workers_cpu(parser), _own_cpu(), time.perf_counter()
    summary = asyncio.run(
        poll_cycle(feeds, store, settings, force=True, parser=parser, ruleset=ruleset)
    )
    timing = Timing(time.perf_counter() - t0, _own_cpu() - cpu0, _workers_cpu(parser) - before)
    wrong = [o for o in summary.outcomes if o.status is not expected]
    if wrong or len(summary.outcomes) != len(feeds):
        sys.exit(f"benchmark aborted: {len(wrong)} feeds not {expected}: figures meaningless")
    return timing


def one_run(
    feeds: Sequence[Feed], settings: Settings, ruleset: RuleSet | None, kept_first: bool
) -> tuple[Timing, Timing, int]:
    """(knowing the items, not knowing them, items a feed it knew) of one run."""
    kept = Parser(Parser.default_workers(len(feeds)))
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        Store(Path(tmp) / "c.db") as store,
        stories_unlinked(),
    ):
        try:
            _poll(feeds, store, settings, kept, ruleset)
            state = store.get_state(feeds[0].id)
            known = len(state.known_items) // 8 if state is not None else 0
            timings = {}
            for knowing in (kept_first, not kept_first):
                _forget(store, known_items=not knowing)
                timings[knowing] = _poll(feeds, store, settings, kept, ruleset)
        finally:
            kept.close()
    return timings[True], timings[False], known


def _median(timings: Sequence[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings),
        statistics.median(t.cpu for t in timings),
        statistics.median(t.cpu_workers for t in timings),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.changed", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--feeds", type=int, default=1000, help="feeds in the farm (default 1000)")
    p.add_argument("--items", type=int, default=30, help="items per feed (default 30)")
    p.add_argument("--runs", type=int, default=3, help="runs, medians shown (default 3)")
    p.add_argument("--rules", type=Path, default=None, help="rules folder: tag and match too")
    a = p.parse_args(argv)
    if min(a.feeds, a.items, a.runs) < 1:
        p.error("--feeds, --items and --runs must be at least 1")
    settings = Settings(concurrency=32, per_host=32)  # one host: see benchmarks.poll
    ruleset = load_ruleset(a.rules) if a.rules else None
    with Farm(a.feeds, a.items) as farm:
        runs = [one_run(farm_feeds(farm), settings, ruleset, i % 2 == 0) for i in range(a.runs)]
    kept, new = _median([r[0] for r in runs]), _median([r[1] for r in runs])
    ratio = statistics.median(n.cpu_workers / k.cpu_workers for k, n, _ in runs)
    rules = f"rules from {a.rules}" if a.rules else "no rule set"
    print(f"changed bodies, no new item: {a.feeds:,} feeds x {a.items} items, {rules}; "
          f"medians of {a.runs} runs taken in turns")  # fmt: skip
    print(f"  {'':34} {'wall':>8} {'CPU main':>9} {'CPU workers':>12}")
    for label, t in (("knowing each feed's items", kept), ("not knowing them", new)):
        print(f"  {label:34} {seconds(t.wall):>8} {seconds(t.cpu):>9} {seconds(t.cpu_workers):>12}")
    print(f"  items known a feed: {runs[0][2]}; workers' CPU, not knowing / knowing: "
          f"{ratio:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The store's share of story linking: a cold poll of the farm is stored once, unlinked, then
linked (`link_pending`, as the end of a poll cycle does) on a fresh copy each run, with the
CPU of each store call it makes timed apart from the linker's.

    python -m benchmarks.story_store [--feeds 1000] [--items 30] [--runs 3] [--rules rules]

Quoted in process CPU seconds, medians of the runs. The stored poll is kept in a temporary
directory for the runs only.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.ingest.linking import link_pending
from monitor.match.ruleset import load_ruleset
from monitor.models import Settings
from monitor.store import Store

# What linking asks of the store (the rest of its time is the linker's).
CALLS = ("pending_stories", "matched_rules", "save_links", "story_token", "open_stories")


def stored_poll(feeds: int, items: int, rules: Path | None, db: Path) -> None:
    from benchmarks._farm import Farm
    from benchmarks.poll import checked_poll, farm_feeds, stories_unlinked

    ruleset = load_ruleset(rules) if rules else None
    with Farm(feeds, items) as farm, Store(db) as store, stories_unlinked():
        settings = Settings(concurrency=32, per_host=32)
        checked_poll(farm_feeds(farm), store, settings, force=False, workers=2, ruleset=ruleset)


def _timed(name: str, spent: dict[str, float], call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - start

    return timed


def linked_once(stored: Path, copy: Path) -> tuple[int, float, dict[str, float]]:
    """Link a fresh copy of the stored poll: (reports, CPU-s in all, CPU-s per store call)."""
    for suffix in ("", "-wal", "-shm"):  # a stale log of the last run must not replay
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
        if Path(f"{stored}{suffix}").exists():
            shutil.copy(f"{stored}{suffix}", f"{copy}{suffix}")
    spent: dict[str, float] = {}
    originals = {name: getattr(Store, name) for name in CALLS}
    try:
        for name, call in originals.items():
            setattr(Store, name, _timed(name, spent, call))
        with Store(copy) as store:
            start = time.process_time()
            reports = link_pending(store)
            total = time.process_time() - start
    finally:
        for name, call in originals.items():
            setattr(Store, name, call)
    return reports, total, spent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.story_store", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--feeds", type=int, default=1000, help="feeds in the farm (default 1000)")
    p.add_argument("--items", type=int, default=30, help="items per feed (default 30)")
    p.add_argument("--runs", type=int, default=3, help="linking runs, medians shown (default 3)")
    p.add_argument("--rules", type=Path, default=Path("rules"), help="rules folder (default rules)")
    a = p.parse_args(argv)
    if min(a.feeds, a.items, a.runs) < 1:
        p.error("--feeds, --items and --runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        stored = Path(tmp) / "stored.db"
        stored_poll(a.feeds, a.items, a.rules if a.rules.is_dir() else None, stored)
        runs = [linked_once(stored, Path(tmp) / "linked.db") for _ in range(a.runs)]
    reports = runs[0][0]
    store = statistics.median(sum(spent.values()) for _, _, spent in runs)
    total = statistics.median(total for _, total, _ in runs)
    print(f"{reports:,} reports linked; median of {a.runs} runs, process CPU:")
    print(f"  linking in all  {total:7.2f} s")
    print(f"  store calls     {store:7.2f} s ({store / total:.0%})")
    for name in CALLS:
        print(f"    {name:<15}{statistics.median(s.get(name, 0.0) for *_, s in runs):7.2f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

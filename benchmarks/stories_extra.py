"""The stories benchmark's two extra figures (`python -m benchmarks.stories --holdout` and
`--throughput`).

Hold-out: the events are split in two halves, each look-alike pair (and anything chained to
it, like a launch and the Security Council meeting about it) kept within one half, so that
settings tuned while looking at one half can be scored on the other, which they never saw.
Each half is grouped on its own reports only.

Throughput: the linker's own cost at ingest, over a synthetic week of reports (a few thousand
a day from a vocabulary of places, entities, rules and words, most events told several times
over some hours), decided and added one by one in published order with the open stories
forgotten hourly past the window, as the service does; then the poll benchmark's farm (its
feeds' near-duplicate items, parsed, tagged and matched as ingest does, many to a story). Quoted
in process CPU time (median of runs), with the memory the open stories hold at the end of the
week (their objects' sizes) and the process's peak memory.
"""

from __future__ import annotations

import random
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.stories import EvalSet
    from monitor.story.linker import Linker, Report

START = datetime(2026, 3, 2, tzinfo=UTC)


def halves(data: EvalSet) -> tuple[EvalSet, EvalSet]:
    """Two evaluation sets with disjoint events; look-alike chains stay in one half."""
    from benchmarks.stories import EvalSet

    parent = {e: e for e in data.events}

    def root(e: str) -> str:
        while parent[e] != e:
            e = parent[e]
        return e

    for pair in data.lookalikes:
        parent[root(pair.b)] = root(pair.a)
    chains: dict[str, list[str]] = {}
    for event in data.events:
        chains.setdefault(root(event), []).append(event)
    sides: tuple[set[str], set[str]] = (set(), set())
    for chain in sorted(chains.values(), key=lambda c: (-len(c), min(c))):
        smaller = min(sides, key=len)  # keep the halves about the same size
        smaller.update(chain)

    def restrict(events: set[str]) -> EvalSet:
        return EvalSet(
            [r for r in data.reports if data.event_of[r.id] in events],
            {rid: e for rid, e in data.event_of.items() if e in events},
            [e for e in data.events if e in events],
            [p for p in data.lookalikes if p.a in events],
        )

    return restrict(sides[0]), restrict(sides[1])


def holdout(specs: list[str], data: EvalSet, seed: int) -> str:
    from benchmarks.stories import run

    out = []
    for name, half in zip(("half A", "half B"), halves(data), strict=True):
        events = ", ".join(half.events)
        out.append(f"== {name}: events {events}")
        out.append(run(specs, half, seed))
    return "\n".join(out)


def synthetic_week(seed: int = 1, per_day: int = 2000) -> list[Report]:
    """A week of reports: events told by 1-8 outlets over a few hours, in four languages."""
    from monitor.story.linker import Report

    rng = random.Random(seed)
    langs = ("en", "ja", "zh", "ko")
    regions = [f"R{i}" for i in range(60)]
    entities = [f"entity-{i}" for i in range(3000)]
    rules = [f"rule-{i}" for i in range(40)]
    words = [_word(i) for i in range(20000)]
    reports: list[Report] = []
    span = timedelta(days=7).total_seconds()
    while len(reports) < per_day * 7:
        start = START + timedelta(seconds=rng.uniform(0, span))
        regions_of = tuple(rng.sample(regions, rng.randint(1, 3)))
        entities_of = tuple(rng.sample(entities, rng.randint(0, 4)))
        rules_of = tuple(rng.sample(rules, rng.randint(0, 2)))
        vocabulary = rng.sample(words, 40)
        figure = str(rng.randint(11, 999))
        for _ in range(rng.randint(1, 8)):
            title = " ".join(rng.sample(vocabulary, 8))
            summary = " ".join(rng.sample(vocabulary, 20) + rng.sample(words, 10)) + f" {figure}"
            reports.append(
                Report(
                    item_id=len(reports) + 1,
                    feed_id=f"outlet-{rng.randint(1, 100)}",
                    lang=rng.choice(langs),
                    published=start + timedelta(minutes=rng.uniform(0, 360)),
                    title=title,
                    summary=summary,
                    regions=regions_of,
                    entities=entities_of[: rng.randint(0, len(entities_of))],
                    concepts=rules_of,
                )
            )
    return sorted(reports, key=lambda r: (r.published, r.item_id))


def _word(number: int) -> str:
    """A made-up word of letters: no figure inside to be read as a number."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += chr(ord("a") + digit)
        if not number:
            return letters + "o"


def replay(reports: list[Report]) -> Linker:
    """Decide and add every report; forget hourly, as ingest does."""
    from monitor.story.linker import Linker

    linker = Linker()
    next_forget = reports[0].published + timedelta(hours=1)
    for report in reports:
        if report.published >= next_forget:
            linker.forget_before(report.published - linker.window)
            next_forget = report.published + timedelta(hours=1)
        story = linker.decide(report).story
        linker.add(report.item_id if story is None else story, report)
    return linker


def farm_reports(feeds: int = 100, items: int = 30) -> list[Report]:
    """The poll benchmark's farm as ingest hands it to the linker: each feed parsed,
    normalised, tagged and matched with the default rules, in stored order. Its items are
    near duplicates (a few stock sentences each), so a few stories gather most of them."""
    from benchmarks._farm import build_feed, feed_path
    from monitor.ingest.normalize import normalize
    from monitor.ingest.parse import parse
    from monitor.models import Feed
    from monitor.story.evaluate import default_rules
    from monitor.story.linker import report_of

    rules = default_rules()
    now = START + timedelta(days=1)
    reports: list[Report] = []
    for index in range(feeds):
        feed = Feed(id=f"farm-{index:04d}", url=f"http://farm.invalid{feed_path(index)}")
        parsed = parse(feed.id, build_feed(index, items, now), {}, feed.url)
        for item in normalize(feed, parsed, feed.url, now):
            tagged, matches = rules.enrich(item, feed)
            reports.append(report_of(len(reports) + 1, tagged, [m.rule_id for m in matches]))
    return reports


def timed_replay(reports: list[Report], runs: int) -> tuple[float, Linker]:
    """The median CPU seconds of `runs` replays, and the last replay's linker."""
    times = []
    for _ in range(runs):
        began = time.process_time()
        linker = replay(reports)
        times.append(time.process_time() - began)
    return statistics.median(times), linker


def _rate(label: str, count: int, cpu: float, runs: int) -> str:
    return (
        f"{label}: {count} reports in {cpu:.2f} s CPU (median of {runs}): "
        f"{count / cpu:,.0f} reports/s, {cpu / count * 1e3:.3f} ms a report"
    )


def throughput(seed: int = 1, runs: int = 3, per_day: int = 2000, feeds: int = 100) -> str:
    """The synthetic week, then the farm's near duplicates, then the peak memory."""
    reports = synthetic_week(seed, per_day)
    cpu, linker = timed_replay(reports, runs)
    lines = [
        _rate("linker throughput, synthetic week over 7 days", len(reports), cpu, runs),
        f"open stories at the end: {linker.open_stories()}, index keys {linker.index_size()}, "
        f"memory they hold {deep_size(linker) / 2**20:.1f} MiB",
    ]
    if feeds:
        farm = farm_reports(feeds)
        cpu, linker = timed_replay(farm, runs)
        lines.append(_rate(f"linker throughput, poll farm ({feeds} feeds)", len(farm), cpu, runs))
        lines.append(f"farm stories: {linker.open_stories()}, index keys {linker.index_size()}")
    lines.append(f"peak memory of this process: {_peak_mib():.0f} MiB")
    return "\n".join(lines)


def _peak_mib() -> float:
    """Peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def deep_size(root: object) -> int:
    """Bytes held by `root` and everything it refers to (each object counted once; the
    shared datetime and str values too, so this is an upper bound)."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, name) for name in obj.__slots__ if hasattr(obj, name))
    return total

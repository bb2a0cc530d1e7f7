"""The linker on the stories evaluation set (tests/story/eval/), through the benchmark.

Expected figures, with a small margin under what the linker reaches when this was written
(pair precision 1.000, recall 0.878, cross-language recall 0.879, no look-alike pair joined;
each hold-out half about 0.88 recall at precision 1.000), so a change that loses ground fails
here. Also: the hold-out halves keep every look-alike pair within one half and share no event;
`--cluster linker --holdout` runs as a command; the throughput figure comes from a real replay
whose open stories stay within the window.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from benchmarks.stories import load_set, score
from benchmarks.stories_extra import farm_reports, halves, replay, synthetic_week, throughput
from monitor.story.evaluate import cluster

ROOT = Path(__file__).resolve().parents[2]


def test_the_linker_reaches_its_figures_on_the_evaluation_set() -> None:
    data = load_set()
    s = score(cluster(data.reports), data)
    assert s.precision is not None and s.precision >= 0.99
    assert s.recall >= 0.86
    assert s.cross_recall is not None and s.cross_recall >= 0.85
    assert s.lookalikes_joined == []


def test_each_hold_out_half_reaches_the_figures_on_its_own() -> None:
    for half in halves(load_set()):
        s = score(cluster(half.reports), half)
        assert s.precision is not None and s.precision >= 0.99, half.events
        assert s.recall >= 0.85, half.events
        assert s.lookalikes_joined == [], half.events


def test_the_halves_split_events_and_keep_lookalikes_together() -> None:
    data = load_set()
    a, b = halves(data)
    assert not set(a.events) & set(b.events)
    assert set(a.events) | set(b.events) == set(data.events)
    assert abs(len(a.events) - len(b.events)) <= 2
    assert len(a.lookalikes) + len(b.lookalikes) == len(data.lookalikes)
    for half in (a, b):
        assert {p.b for p in half.lookalikes} <= set(half.events)
        assert {half.event_of[r.id] for r in half.reports} == set(half.events)


def test_the_linker_is_the_same_whatever_order_the_reports_are_given_in() -> None:
    data = load_set()
    canonical = sorted(sorted(g) for g in cluster(data.reports))
    assert sorted(sorted(g) for g in cluster(data.reports[::-1])) == canonical


def test_the_command_scores_the_linker_on_both_halves() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.stories", "--cluster", "linker", "--holdout"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("linker ")]
    assert len(rows) == 2 and "== half A" in result.stdout and "== half B" in result.stdout
    for row in rows:
        assert float(row[1]) >= 0.99 and float(row[2]) >= 0.85


def test_a_replayed_week_keeps_only_the_open_stories_of_the_window() -> None:
    reports = synthetic_week(seed=3, per_day=60)
    linker = replay(reports)
    last = reports[-1].published
    assert 0 < linker.open_stories() < len(reports)
    assert linker.index_size() > 0
    # Hourly forgetting keeps nothing silent for longer than the window (and an hour).
    oldest = linker.oldest_open()
    assert oldest is not None and oldest >= last - linker.window - timedelta(hours=1)


def test_the_throughput_figure_names_its_rate_and_the_memory_held() -> None:
    text = throughput(seed=2, runs=1, per_day=40, feeds=2)
    rates = re.findall(
        r": (\d+) reports in [0-9.]+ s CPU \(median of 1\): ([0-9,]+) reports/s", text
    )
    assert len(rates) == 2, text  # the synthetic week, then the poll farm
    assert int(rates[1][0]) == 2 * 30 and all(int(r.replace(",", "")) > 0 for _, r in rates), text
    held = re.search(r"open stories at the end: (\d+), index keys (\d+), memory they hold", text)
    assert held is not None and int(held.group(1)) > 0 and int(held.group(2)) > 0, text
    peak = re.search(r"peak memory of this process: (\d+) MiB", text)
    assert peak is not None and int(peak.group(1)) > 0, text


def test_the_farm_items_gather_into_few_stories() -> None:
    reports = farm_reports(feeds=3, items=30)
    assert len(reports) == 90 and all(r.title for r in reports)
    linker = replay(reports)
    # Near duplicates told over and over: most join a story someone already started.
    assert 0 < linker.open_stories() <= len(reports) // 3

"""The stories evaluation set (tests/story/eval/) and its scorer (benchmarks/stories.py).

The data is read here straight from the files, apart from the scorer's loader, so a slip in
either shows. Expected: ids unique; every event told by 3-8 reports in at least two languages
(most in three or four); four languages with at least 25 reports each; times with a zone inside
about two weeks; look-alike pairs name real events and stand close in time. The scorer gives
1.0 to the answer key itself, nothing (precision undefined) to the each-report-alone baseline,
counts every look-alike when all is one group, and stops with a clear error on bad input.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from benchmarks.stories import (
    DATA,
    EvalSet,
    LookAlike,
    Report,
    load_set,
    run,
    score,
    singletons,
    title_overlap,
)

ROOT = Path(__file__).resolve().parents[2]
LANGS = {"en", "ja", "zh", "ko"}


def rows() -> list[dict[str, Any]]:
    lines = (DATA / "reports.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def key() -> dict[str, Any]:
    meta: dict[str, Any] = YAML(typ="safe").load((DATA / "events.yaml").read_text("utf-8"))
    return meta


def by_event() -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows():
        groups[row["event"]].append(row)
    return groups


def gold(data: EvalSet) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for rid, event in data.event_of.items():
        groups[event].append(rid)
    return list(groups.values())


# --- the data ------------------------------------------------------------------------------


def test_ids_and_links_are_unique_and_every_field_is_filled() -> None:
    reports = rows()
    assert len({r["id"] for r in reports}) == len(reports)
    assert len({r["link"] for r in reports}) == len(reports)
    fields = {"id", "event", "outlet", "lang", "published", "title", "summary", "link"}
    for r in reports:
        assert set(r) == fields, r["id"]
        assert all(isinstance(r[f], str) and r[f].strip() for f in fields), r["id"]
        assert r["link"].startswith("https://") and ".example/" in r["link"], r["id"]
    events = [e["id"] for e in key()["events"]]
    assert len(set(events)) == len(events)


def test_every_event_has_three_to_eight_reports_in_two_or_more_languages() -> None:
    groups = by_event()
    assert set(groups) == {e["id"] for e in key()["events"]}  # no report orphaned, no event empty
    assert len(groups) >= 30
    langs = {event: {r["lang"] for r in reports} for event, reports in groups.items()}
    for event, reports in groups.items():
        assert 3 <= len(reports) <= 8, event
        assert len(langs[event]) >= 2, event
    wide = [event for event, found in langs.items() if len(found) >= 3]
    assert len(wide) > len(groups) / 2  # most events reach three or four languages


def test_four_languages_with_at_least_25_reports_each_from_known_outlets() -> None:
    counts = Counter(r["lang"] for r in rows())
    assert set(counts) == LANGS
    assert min(counts.values()) >= 25, counts
    outlets = {o["name"]: o for o in key()["outlets"]}
    assert 8 <= len(outlets) <= 12
    for r in rows():
        outlet = outlets[r["outlet"]]
        assert r["lang"] == outlet["lang"], r["id"]
        assert r["link"].startswith(f"https://{outlet['site']}/"), r["id"]


def test_times_carry_a_zone_and_span_about_two_weeks() -> None:
    times = [datetime.fromisoformat(r["published"]) for r in rows()]
    assert all(t.tzinfo is not None for t in times)
    assert timedelta(days=10) <= max(times) - min(times) <= timedelta(days=16)
    for event, reports in by_event().items():
        spread = [datetime.fromisoformat(r["published"]) for r in reports]
        assert max(spread) - min(spread) <= timedelta(days=1), event  # one development, one day


def test_summaries_are_one_to_three_sentences() -> None:
    end = re.compile(r"[.!?。！？](?=\s|$)|[。！？]")
    for r in rows():
        sentences = len(end.findall(r["summary"])) or 1
        assert 1 <= sentences <= 3, (r["id"], sentences)


def test_lookalike_pairs_name_real_events_close_in_time() -> None:
    groups = by_event()
    pairs = key()["lookalikes"]
    assert len(pairs) >= 10
    assert len({frozenset((p["a"], p["b"])) for p in pairs}) == len(pairs)
    assert len({p["name"] for p in pairs}) == len(pairs)
    for p in pairs:
        assert p["a"] != p["b"] and p["a"] in groups and p["b"] in groups, p["name"]
        first = [
            min(datetime.fromisoformat(r["published"]) for r in groups[e]) for e in (p["a"], p["b"])
        ]
        assert abs(first[0] - first[1]) <= timedelta(days=4), p["name"]


def test_the_loader_reads_what_the_files_hold() -> None:
    data = load_set()
    assert len(data.reports) == len(rows())
    assert data.event_of == {r["id"]: r["event"] for r in rows()}
    assert len(data.lookalikes) == len(key()["lookalikes"])
    assert all(not hasattr(r, "event") for r in data.reports)  # the answer stays hidden


# --- the scorer ----------------------------------------------------------------------------


def test_the_answer_key_scores_one_and_joins_no_lookalike() -> None:
    data = load_set()
    s = score(gold(data), data)
    assert (s.precision, s.recall, s.f1, s.cross_recall) == (1.0, 1.0, 1.0, 1.0)
    assert s.lookalikes_joined == []
    assert s.joined == s.gold > s.cross_gold > 0


def test_each_report_alone_scores_nothing_and_precision_is_undefined() -> None:
    data = load_set()
    s = score(singletons(data.reports), data)
    assert s.precision is None
    assert (s.recall, s.f1, s.cross_recall, s.joined) == (0.0, 0.0, 0.0, 0)
    assert s.lookalikes_joined == []
    line = run(["singletons"], data, seed=1).splitlines()[4]
    assert line.split()[:5] == ["singletons", "undefined", "0.000", "0.000", "0.000"]


def test_one_big_group_joins_every_lookalike_and_keeps_full_recall() -> None:
    data = load_set()
    s = score([[r.id for r in data.reports]], data)
    n = len(data.reports)
    assert s.recall == 1.0 and s.cross_recall == 1.0
    assert s.precision == pytest.approx(s.gold / (n * (n - 1) / 2))
    assert s.lookalikes_joined == data.lookalikes


def test_figures_on_a_hand_made_set() -> None:
    t = datetime.fromisoformat("2026-03-03T08:00:00+09:00")
    reports = [
        Report(rid, "o", lang, t, "x", "y", f"https://o.example/{rid}")
        for rid, lang in [("a1", "en"), ("a2", "en"), ("a3", "ko"), ("b1", "en"), ("b2", "zh")]
    ]
    data = EvalSet(
        reports,
        {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"},
        ["A", "B"],
        [LookAlike("A vs B", "A", "B")],
    )
    # Gold pairs: a1a2 (both en), a1a3 a2a3 b1b2 (cross-language). Found: a1a2, a3b1 (wrong).
    s = score([["a1", "a2"], ["a3", "b1"], ["b2"]], data)
    assert s.precision == 0.5
    assert s.recall == 0.25
    assert s.cross_recall == 0.0 and s.cross_gold == 3  # the one hit is same-language
    assert s.f1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 3))
    assert s.lookalikes_joined == [LookAlike("A vs B", "A", "B")]


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([["a1"]], "left out 1 report"),
        ([["a1", "a2"], ["a2"]], "'a2' in more than one group"),
        ([["a1"], ["a2"], ["zz"]], "unknown report id 'zz'"),
    ],
)
def test_a_grouping_that_loses_or_invents_reports_is_refused(
    groups: list[list[str]], message: str
) -> None:
    t = datetime.fromisoformat("2026-03-03T08:00:00+00:00")
    data = EvalSet(
        [Report(rid, "o", "en", t, "x", "y", "l") for rid in ("a1", "a2")],
        {"a1": "A", "a2": "A"},
        ["A"],
        [],
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        score(groups, data)


def test_cross_language_recall_is_undefined_when_no_gold_pair_crosses() -> None:
    t = datetime.fromisoformat("2026-03-03T08:00:00+00:00")
    data = EvalSet(
        [Report(rid, "o", "en", t, "x", "y", "l") for rid in ("a1", "a2")],
        {"a1": "A", "a2": "A"},
        ["A"],
        [],
    )
    s = score([["a1", "a2"]], data)
    assert (s.precision, s.recall, s.cross_recall) == (1.0, 1.0, None)


def test_title_overlap_baseline_groups_every_report_once() -> None:
    data = load_set()
    groups = title_overlap(data.reports)
    assert sorted(itertools.chain.from_iterable(groups)) == sorted(data.event_of)
    s = score(groups, data)
    assert s.precision is not None and 0 < s.precision < 1  # it joins, and words mislead it
    assert s.lookalikes_joined  # the look-alikes are built to trap exactly this


# --- the command ---------------------------------------------------------------------------


def command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.stories", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def answer_key(reports: list[Report]) -> list[list[str]]:
    """A grouping that cheats with the answer key: the command must score it 1.0."""
    data = load_set()
    groups: dict[str, list[str]] = defaultdict(list)
    for r in reports:
        groups[data.event_of[r.id]].append(r.id)
    return list(groups.values())


def test_the_command_runs_both_baselines_by_default_and_prints_the_anchor() -> None:
    result = command()
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    assert table["singletons"] == ["undefined", "0.000", "0.000", "0.000", "0/13"]
    assert "title-overlap" in table
    assert "0.99" in result.stdout and "0.87" in result.stdout and "0.92" in result.stdout


def test_the_command_loads_a_grouping_by_import_path() -> None:
    result = command("--cluster", "tests.story.test_eval_set:answer_key")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("tests."))
    assert row.split()[1:] == ["1.000", "1.000", "1.000", "1.000", "0/13"]


def test_the_command_names_a_bad_option_or_a_bad_line(tmp_path: Path) -> None:
    result = command("--cluster", "nonsense")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --cluster 'nonsense': give MODULE:FUNCTION or one of singletons, title-overlap, "
        "linker"
    )
    (tmp_path / "events.yaml").write_text((DATA / "events.yaml").read_text("utf-8"), "utf-8")
    lines = (DATA / "reports.jsonl").read_text("utf-8").splitlines()
    broken = json.loads(lines[1])
    broken["published"] = "2026-03-03T08:00:00"  # no zone: which day it was is unknown
    lines[1] = json.dumps(broken, ensure_ascii=False)
    (tmp_path / "reports.jsonl").write_text("\n".join(lines), "utf-8")
    result = command("--data", str(tmp_path))
    assert result.returncode == 2
    assert "reports.jsonl:2: published '2026-03-03T08:00:00' needs a zone" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

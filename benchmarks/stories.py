"""Scores a story grouping against the stories evaluation set (tests/story/eval/).

    python -m benchmarks.stories [--cluster NAME|MODULE:FUNCTION ...] [--data DIR] [--seed N]
                                 [--holdout] [--throughput]

The set is invented news: over 30 events told by about 150 reports from 12 outlets in English,
Japanese, Chinese and Korean (3-8 reports an event, most in three or four languages), with
pairs of look-alike events (two launches two days apart, two statements the same afternoon, a
drill's start and its end, ...) named in events.yaml.

A grouping is a function `cluster(reports) -> list[list[report_id]]` that puts every report in
exactly one group. It sees `Report`s (id, outlet, lang, published, title, summary, link), never
the event, in a shuffled order (`--seed`) so that the file's order gives nothing away.
`--cluster` takes `MODULE:FUNCTION` (MODULE is imported from the current directory or the
installed packages) or a built-in name, and may be repeated; without it both baselines and
the linker run:

- `singletons`: each report alone. The floor: it joins nothing, so it cannot be wrong.
- `title-overlap`: reports in the same language whose titles share enough words (CJK and Hangul
  by character pairs) are joined. A naive grouping, to show what words alone get and where
  they mislead.
- `linker`: monitor's own story linker (`monitor.story.evaluate:cluster`): each report tagged
  and matched with the default rules, then linked in published order as ingest does.

`--holdout` scores each grouping on two halves of the events separately (look-alike pairs kept
within a half), to check settings tuned on one half against the other. `--throughput` adds the
linker's cost over a synthetic week of reports (see benchmarks/stories_extra.py).

Figures, counted over pairs of reports (two reports are a gold pair when they tell one event):

- pair precision: of the pairs the grouping put together, the share that are gold pairs. Low
  precision means distinct developments hidden under one story. Undefined (printed so) when
  the grouping joins no pair at all.
- pair recall: of the gold pairs, the share the grouping put together. Low recall means one
  development shown as several stories.
- F1: their harmonic mean, 2TP / (2TP + FP + FN); 0 when nothing right was joined.
- cross-language recall: pair recall over gold pairs whose two reports differ in language,
  the part that "reported by 5 outlets in en, ja, zh, ko" depends on.
- look-alikes joined: look-alike event pairs with a report of one in the same group as a
  report of the other, out of all such pairs, then named. Each is a development hidden.

Published anchor: multilingual news clustering has been reported at about 0.99 precision and
0.87 recall (F1 0.92) on a large benchmark of real news. This set is small and built from near
misses on purpose, so read its figures against each other and against that anchor as a rough
yardstick only: high precision first (never hide a development), then recall.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from benchmarks.stories_extra import holdout, throughput

DATA = Path(__file__).resolve().parents[1] / "tests" / "story" / "eval"
REPORT_FIELDS = ("id", "event", "outlet", "lang", "published", "title", "summary", "link")


@dataclass(frozen=True)
class Report:
    """What a grouping may look at: everything but the answer (the event)."""

    id: str
    outlet: str
    lang: str
    published: datetime
    title: str
    summary: str
    link: str


@dataclass(frozen=True)
class LookAlike:
    name: str
    a: str
    b: str


@dataclass(frozen=True)
class EvalSet:
    reports: list[Report]
    event_of: dict[str, str]  # report id -> event id
    events: list[str]
    lookalikes: list[LookAlike]


@dataclass(frozen=True)
class Scores:
    precision: float | None  # None: the grouping joined no pair
    recall: float
    f1: float
    cross_recall: float | None  # None: no gold pair crosses languages
    joined: int  # pairs the grouping put together
    gold: int  # gold pairs
    cross_gold: int
    lookalikes_joined: list[LookAlike]


Cluster = Callable[[list[Report]], list[list[str]]]


# --- loading --------------------------------------------------------------------------------


def load_set(directory: Path = DATA) -> EvalSet:
    """Reads events.yaml and reports.jsonl; bad input stops with the file, line and field."""
    events, lookalikes = load_key(directory / "events.yaml")
    reports: list[Report] = []
    event_of: dict[str, str] = {}
    path = directory / "reports.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        report, event = parse_report(line, f"{path}:{number}")
        if report.id in event_of:
            raise ValueError(f"{path}:{number}: report id {report.id!r} used twice; ids are unique")
        if event not in events:
            raise ValueError(f"{path}:{number}: event {event!r} is not in events.yaml; add it")
        reports.append(report)
        event_of[report.id] = event
    for pair in lookalikes:
        if not {pair.a, pair.b} <= set(events):
            raise ValueError(
                f"{directory / 'events.yaml'}: look-alike {pair.name!r} names an event not listed"
            )
    return EvalSet(reports, event_of, events, lookalikes)


def load_key(path: Path) -> tuple[list[str], list[LookAlike]]:
    """The answer key's event ids and look-alike pairs."""
    try:
        meta = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
    try:
        events = [str(e["id"]) for e in meta["events"]]
        pairs = [LookAlike(str(p["name"]), str(p["a"]), str(p["b"])) for p in meta["lookalikes"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: needs `events:` (each with id) and `lookalikes:` (each with name, a, b);"
            f" missing {exc}"
        ) from exc
    return events, pairs


def parse_report(line: str, where: str) -> tuple[Report, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not a JSON object ({exc.msg}); one report per line") from exc
    missing = [f for f in REPORT_FIELDS if not isinstance(row.get(f), str) or not row[f]]
    if missing:
        raise ValueError(
            f"{where}: {', '.join(missing)} missing, empty or not text;"
            f" every report needs {', '.join(REPORT_FIELDS)}"
        )
    try:
        published = datetime.fromisoformat(row["published"])
    except ValueError as exc:
        raise ValueError(f"{where}: published {row['published']!r} is not an ISO time") from exc
    if published.tzinfo is None:
        raise ValueError(f"{where}: published {row['published']!r} needs a zone (+09:00, Z)")
    fields = {f: row[f] for f in REPORT_FIELDS if f not in ("event", "published")}
    return Report(published=published, **fields), row["event"]


# --- scoring --------------------------------------------------------------------------------


def pairs(groups: Iterable[Sequence[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in itertools.combinations(g, 2)}


def check_groups(groups: list[list[str]], ids: Iterable[str]) -> None:
    """A grouping must place every report exactly once, or its figures mean nothing."""
    expected = set(ids)
    seen: set[str] = set()
    for group in groups:
        for rid in group:
            if rid not in expected:
                raise ValueError(f"grouping returned unknown report id {rid!r}")
            if rid in seen:
                raise ValueError(f"grouping put report {rid!r} in more than one group")
            seen.add(rid)
    if missing := sorted(expected - seen):
        raise ValueError(f"grouping left out {len(missing)} report(s), first {missing[0]!r}")


def score(groups: list[list[str]], data: EvalSet) -> Scores:
    check_groups(groups, data.event_of)
    by_event: dict[str, list[str]] = {}
    for rid, event in data.event_of.items():
        by_event.setdefault(event, []).append(rid)
    gold = pairs(by_event.values())
    found = pairs(groups)
    hits = gold & found
    lang = {r.id: r.lang for r in data.reports}
    cross = {p for p in gold if len({lang[r] for r in p}) == 2}
    events_together = {frozenset(data.event_of[r] for r in p) for p in found}
    return Scores(
        precision=len(hits) / len(found) if found else None,
        recall=len(hits) / len(gold),
        f1=2 * len(hits) / (2 * len(hits) + len(found - gold) + len(gold - found)),
        cross_recall=len(hits & cross) / len(cross) if cross else None,
        joined=len(found),
        gold=len(gold),
        cross_gold=len(cross),
        lookalikes_joined=[p for p in data.lookalikes if frozenset((p.a, p.b)) in events_together],
    )


# --- baselines ------------------------------------------------------------------------------


def singletons(reports: list[Report]) -> list[list[str]]:
    return [[r.id] for r in reports]


# Words every English headline has; sharing them says nothing about the event.
STOPWORDS = frozenset(
    {"the", "and", "for", "from", "with", "after", "over", "into", "off", "its", "says", "said"}
)
LATIN = re.compile(r"[a-z0-9]+")
CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
OVERLAP = 0.25  # Jaccard of title tokens at which two same-language reports are joined


def title_tokens(title: str) -> set[str]:
    """Latin words, and character pairs of CJK and Hangul runs (they have no spaces to trust)."""
    lower = title.lower()
    words = {w for w in LATIN.findall(lower) if len(w) > 2 and w not in STOPWORDS}
    for run in CJK_RUN.findall(lower):
        words.update(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
    return words


def title_overlap(reports: list[Report]) -> list[list[str]]:
    parent = {r.id: r.id for r in reports}

    def root(rid: str) -> str:
        while parent[rid] != rid:
            parent[rid] = parent[parent[rid]]
            rid = parent[rid]
        return rid

    tokens = {r.id: title_tokens(r.title) for r in reports}
    for a, b in itertools.combinations(reports, 2):
        ta, tb = tokens[a.id], tokens[b.id]
        if a.lang == b.lang and ta and len(ta & tb) / len(ta | tb) >= OVERLAP:
            parent[root(a.id)] = root(b.id)
    groups: dict[str, list[str]] = {}
    for r in reports:
        groups.setdefault(root(r.id), []).append(r.id)
    return list(groups.values())


BASELINES: dict[str, Cluster] = {"singletons": singletons, "title-overlap": title_overlap}
NAMED = {"linker": "monitor.story.evaluate:cluster"}  # built-in names beside the baselines


def resolve(spec: str) -> Cluster:
    """A baseline name or MODULE:FUNCTION; a wrong one stops with what to write instead."""
    if spec in BASELINES:
        return BASELINES[spec]
    module_name, sep, attr = NAMED.get(spec, spec).partition(":")
    if not sep or not module_name or not attr:
        names = ", ".join([*BASELINES, *NAMED])
        raise ValueError(f"--cluster {spec!r}: give MODULE:FUNCTION or one of {names}")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--cluster {spec!r}: cannot load it ({exc})") from exc
    if not callable(function):
        raise ValueError(f"--cluster {spec!r}: {attr} is not a function")
    return function  # type: ignore[no-any-return]


# --- printing -------------------------------------------------------------------------------


def figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def describe(data: EvalSet) -> str:
    langs: dict[str, int] = {}
    for r in data.reports:
        langs[r.lang] = langs.get(r.lang, 0) + 1
    per_lang = ", ".join(f"{lang} {n}" for lang, n in sorted(langs.items()))
    outlets = len({r.outlet for r in data.reports})
    return (
        f"{len(data.reports)} reports ({per_lang}) from {outlets} outlets, "
        f"{len(data.events)} events, {len(data.lookalikes)} look-alike pairs"
    )


def row(name: str, s: Scores, lookalikes: int) -> str:
    return (
        f"{name:<24} {figure(s.precision):>9} {figure(s.recall):>7} {figure(s.f1):>6} "
        f"{figure(s.cross_recall):>13} {len(s.lookalikes_joined):>8}/{lookalikes}"
    )


def run(specs: list[str], data: EvalSet, seed: int) -> str:
    lines = [describe(data)]
    results = []
    for spec in specs:
        cluster = resolve(spec)
        reports = list(data.reports)
        random.Random(seed).shuffle(reports)
        results.append((spec, score(cluster(reports), data)))
    first = results[0][1]
    lines.append(f"gold pairs {first.gold}, of them cross-language {first.cross_gold}")
    lines.append("")
    lines.append(f"{'grouping':<24} precision  recall     F1  x-lang recall  look-alikes")
    lines += [row(spec, s, len(data.lookalikes)) for spec, s in results]
    for spec, s in results:
        for pair in s.lookalikes_joined:
            lines.append(f"  {spec} joined {pair.a} and {pair.b}: {pair.name}")
    lines.append("")
    lines.append("published anchor (multilingual news clustering): P 0.99  R 0.87  F1 0.92")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cluster",
        action="append",
        metavar="NAME|MODULE:FUNCTION",
        help=f"grouping to score, repeatable (default: {', '.join([*BASELINES, *NAMED])})",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="evaluation set directory")
    parser.add_argument("--seed", type=int, default=1, help="order the reports are shown in")
    parser.add_argument("--holdout", action="store_true", help="score two halves of the events")
    parser.add_argument("--throughput", action="store_true", help="linker cost over a week")
    args = parser.parse_args(argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so `--cluster mypkg.mod:fn` finds the caller's code
    try:
        specs = args.cluster or [*BASELINES, *NAMED]
        data = load_set(args.data)
        print(holdout(specs, data, args.seed) if args.holdout else run(specs, data, args.seed))
        if args.throughput:
            print(throughput(args.seed))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The linker's decisions against a straightforward reference written here (pure logic).

The linker finds candidates through an inverted index, bounds their fits before scoring them,
keeps each story's vector lengths as sums and reads what a report shares with a story once
per decision: all of that is there to be fast, none of it may change a decision. The
reference below does the documented arithmetic the plain way: every open story is scored,
vectors are built whole from the counts with today's rarities, cosines summed term by term.

Expected, on a fixed corpus of short-lived events in two languages (look-alikes among them:
the same rule and countries at another place): every report goes to the story the reference
picks, and every join has the reference's score (to the 3 decimals a decision keeps) and the
same `why`, phrase for phrase.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.story.grouping import place_shingles
from monitor.story.linker import Decision, Linker, Report
from monitor.story.profile import KIND_WEIGHT, UNINDEXED_KINDS, WEAK_KINDS, Evidence, kind
from monitor.story.profile import evidence_of as read
from monitor.story.rarity import BACKGROUND
from monitor.story.scoring import (
    HALF_LIFE,
    JOIN,
    NEAR_BEST,
    PLACE_CONFLICT,
    SEQUEL_GAP,
    TEXT_WEIGHT,
    THIN_GAP,
    WEAK_FIT_SHARE,
    WEAK_TEXT_WEIGHT,
    WHY_MAX,
    Scorer,
)

T0 = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


@dataclass
class _Story:
    id: int
    reports: list[Evidence] = field(default_factory=list)

    def features(self) -> Counter[str]:
        return Counter(f for ev in self.reports for f in ev.features)

    def words(self, lang: str) -> Counter[str]:
        return Counter(w for ev in self.reports if ev.lang == lang for w in ev.words)

    def members(self, lang: str) -> int:
        return sum(ev.lang == lang for ev in self.reports)

    def index_keys(self) -> set[str]:
        return set(self.features()) | {ev.keys[w] for ev in self.reports for w in ev.words}


class _Reference:
    """Every open story scored in full with today's rarities (see `monitor.story.scoring`)."""

    def __init__(self) -> None:
        self.stories: dict[int, _Story] = {}

    def weight(self, key: str) -> float:
        df = sum(key in s.index_keys() for s in self.stories.values())
        value = key.partition(":")[2]
        common = key.startswith(("region:", "count:")) or value in place_shingles()
        background = BACKGROUND // 2 if common else 0
        top = math.log(len(self.stories) + BACKGROUND + 1)
        return max(0.0, top - math.log(df + background + 1))

    def score(self, ev: Evidence, story: _Story) -> tuple[float, list[str]]:
        first = min(r.published for r in story.reports)
        last = max(r.published for r in story.reports)
        if ev.sequel and ev.published - first > SEQUEL_GAP:
            return 0.0, []
        mine = {f: KIND_WEIGHT[kind(f)] * self.weight(f) for f in ev.features}
        counts, size = story.features(), len(story.reports)
        theirs = {f: KIND_WEIGHT[kind(f)] * self.weight(f) * n / size for f, n in counts.items()}
        shared = {f: mine[f] * theirs[f] for f in mine if f in theirs}
        fit = _cosine(mine, theirs)
        words = {w: self.weight(ev.keys[w]) for w in ev.words}
        counted, members = story.words(ev.lang), story.members(ev.lang)
        held = {w: self.weight(f"{ev.lang}:{w}") * n / members for w, n in counted.items()}
        text = _cosine(words, held) if members else 0.0
        same = [w for w in words if w in held] if text else []
        before, after = first - ev.published, ev.published - last
        gap = max(0.0, before.total_seconds(), after.total_seconds()) / 3600
        strong = any(kind(f) not in WEAK_KINDS for f in shared)
        thin = gap <= THIN_GAP and any(kind(f) == "capital" for f in shared)
        if not same and not (strong or thin):
            return 0.0, []
        if same and not strong:  # countries and capitals only: the words carry the link
            total = WEAK_FIT_SHARE * fit + WEAK_TEXT_WEIGHT * text
        else:
            total = fit + TEXT_WEIGHT * text
        total *= 0.5 ** (gap / HALF_LIFE)
        places = {p for r in story.reports for p in r.places}
        if ev.places and places and not ev.places & places:
            total *= PLACE_CONFLICT
        ranked = sorted((f for f, v in shared.items() if v > 0), key=lambda f: (-shared[f], f))
        why = [_phrase(f) for f in ranked[:WHY_MAX]]
        if same:
            why.append("same words: " + ", ".join(sorted(same, key=lambda w: (-words[w], w))[:3]))
        return total, why

    def decide(self, ev: Evidence) -> tuple[int | None, float, list[str]]:
        """The story `ev` joins (None: a new one), the fit and the evidence phrases."""
        found = [s for s in self.stories.values() if self._findable(ev, s)]
        scored = [(*self.score(ev, s), s) for s in found]
        if not scored:
            return None, 0.0, []
        best = max(scored, key=lambda r: (round(r[0], 9), -_first(r[2]).timestamp(), -r[2].id))
        if best[0] < JOIN or not best[1]:
            return None, best[0], []
        return best[2].id, best[0], best[1]

    def _findable(self, ev: Evidence, story: _Story) -> bool:
        """Whether `story` shares an indexed key with `ev` (countries and round numbers find
        no story)."""
        keys = story.index_keys()
        features = {f for f in ev.features if kind(f) not in UNINDEXED_KINDS}
        return bool(features & keys or {ev.keys[w] for w in ev.words} & keys)


def _first(story: _Story) -> datetime:
    return min(r.published for r in story.reports)


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return sum(a[k] * b[k] for k in a if k in b) / norm if norm else 0.0


def _phrase(feature: str) -> str:
    name, _, value = feature.partition(":")
    label = {"op": "operation", "capital": "entity"}.get(name, name)
    return f"{label} {value}"


def _corpus() -> list[Report]:
    """Events told over a few hours by several outlets in English or Japanese; pairs of them
    alike (the same rule and countries) but at other places and in other words."""
    rng = random.Random(7)
    vocabulary = [f"{a}{b}" for a in "bdfgklmnprst" for b in ("ane", "olo", "ure", "ist")]
    reports: list[Report] = []
    for event in range(12):
        rule = f"rule-{event // 2}"  # two events a rule: look-alikes
        place = f"place-{event}"
        words = rng.sample(vocabulary, 12)
        start = T0 + timedelta(hours=event * 1.5)
        for n in range(rng.randint(2, 5)):
            title = " ".join(rng.sample(words, 6))
            figure = f" {100 + event * 7} km" if n % 2 else ""
            reports.append(
                Report(
                    item_id=len(reports) + 1,
                    feed_id=f"outlet-{rng.randint(1, 6)}",
                    lang=rng.choice(("en", "ja")),
                    published=start + timedelta(minutes=rng.uniform(0, 240)),
                    title=title + figure,
                    summary=" ".join(rng.sample(vocabulary, 4)),
                    regions=("KP", "KR") if event % 2 else ("CN", "JP"),
                    entities=(place, f"agency-{event % 3}"),
                    concepts=(rule,),
                    places=(place,),
                )
            )
    return sorted(reports, key=lambda r: (r.published, r.item_id))


def test_every_decision_is_the_one_a_straightforward_reference_makes() -> None:
    linker, reference = Linker(), _Reference()
    joins = 0
    for report in _corpus():
        ev = read(report)
        decision: Decision = linker.decide(report)
        story, score, why = reference.decide(ev)
        assert decision.story == story, report
        if story is not None:
            joins += 1
            assert decision.score == round(score, 3), report
            assert list(decision.why[:-1]) == why, report  # the last phrase says when
        chosen = report.item_id if story is None else story
        linker.add(chosen, report)
        reference.stories.setdefault(chosen, _Story(chosen)).reports.append(ev)
    assert joins >= 15 and len(reference.stories) >= 12  # both kinds of decision were made


def test_the_bound_candidates_are_pruned_by_is_never_below_their_fit() -> None:
    # `Scorer.most` lets the linker skip stories that cannot join: a bound below a fit would
    # hide the story a report belongs to, so every open story is checked at every report.
    linker = Linker()
    checked = pruned = 0
    for report in _corpus():
        ev = read(report)
        scorer = Scorer(linker._rarity, len(linker._stories))
        for story in linker._stories.values():
            fit = scorer.score(ev, story, explain=False)[0]
            most = scorer.most(ev, story)
            assert fit <= most + 1e-12, (report, story.id)
            checked += 1
            pruned += most < JOIN * NEAR_BEST
        decision = linker.decide(report)
        linker.add(report.item_id if decision.story is None else decision.story, report)
    assert checked > 100 and pruned > 10  # the bound was put to the test, and it prunes

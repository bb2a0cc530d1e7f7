"""Stories at ingest: which story a new report joins, or whether it starts one.

Online and incremental: reports come one at a time in the order they are stored, each is
compared with the stories still open (last report within `window`), and the decision is never
revisited by the linker itself (an analyst's split or merge is the only thing that moves a
report afterwards). Pure logic: the store allocates story ids and keeps the decisions.

`Report`, `Decision`, `Linker` and `report_of` are what the store and the CLI use (kept
stable). How a fit is measured is in `monitor.story.scoring`; what is read from a report in
`monitor.story.evidence` and `monitor.story.profile`. Cost: a report is scored against at most
`CANDIDATES` stories found through the index, and costs what it holds, not what they hold,
but for the few near the best, measured afresh (see `monitor.story.rarity.Rarity`); memory is
the open stories, aggregated.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from itertools import compress, repeat
from operator import add
from typing import cast

from monitor.models import Item
from monitor.story.places import event_places
from monitor.story.profile import (
    UNINDEXED_KINDS,
    Evidence,
    Profile,
    TextRead,
    evidence_of,
    kind,
)
from monitor.story.rarity import Rarity
from monitor.story.scoring import (
    CANDIDATE_MAX,
    CANDIDATE_MIN,
    CANDIDATES,
    JOIN,
    NEAR_BEST,
    Scorer,
)

WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class Report:
    """What the linker sees of an item: language-independent evidence plus its text."""

    item_id: int
    feed_id: str  # the outlet
    lang: str | None
    published: datetime
    title: str
    summary: str
    regions: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()  # entity ids, e.g. "xi-jinping"
    concepts: tuple[str, ...] = ()  # rule ids (and rule concept groups) the item matched
    # Entity ids of the places named where something happened (capitals, which mostly stand
    # for governments, left out): reports naming only other places tell another development.
    places: tuple[str, ...] = ()
    # What its text gives, if read already (`profile.read_text`, in a parse worker); else
    # read from `title` and `summary` when evidence is made.
    text: TextRead | None = field(default=None, compare=False, repr=False)


def report_of(
    item_id: int, item: Item, rule_ids: Sequence[str], text: TextRead | None = None
) -> Report:
    """What the linker sees of a stored, tagged item and the rules it matched."""
    return Report(
        item_id=item_id,
        feed_id=item.feed_id,
        lang=item.lang,
        published=item.published,
        title=item.title,
        summary=item.summary,
        regions=tuple(item.regions),
        entities=tuple(dict.fromkeys(tag.id for tag in item.entities)),
        concepts=tuple(sorted(set(rule_ids))),
        places=event_places(item.entities),
        text=text,
    )


@dataclass(frozen=True)
class Decision:
    """Where a report goes: `story` None starts a new story. `why` explains the link in
    short phrases a user reads in `monitor stories show` (e.g. "entity xi-jinping")."""

    story: int | None
    score: float = 0.0
    why: tuple[str, ...] = ()


def _new_story(score: float, closest: Profile) -> Decision:
    weak = f"closest story {closest.id} scored {score:.2f} (joins from {JOIN:.2f})"
    return Decision(story=None, score=round(score, 3), why=(weak,))


@dataclass
class Linker:
    """Holds the open stories (bounded by `window`) and decides for each new report.

        Candidates are the stories that share a feature or a same-language shingle with the
        report, found through an inverted index (key -> story ids); countries are not indexed
        (they would make every story a candidate), and a key more open stories have than half of
    them or `CANDIDATE_MAX` finds none.
    """

    window: timedelta = WINDOW
    _stories: dict[int, Profile] = field(default_factory=dict)
    _rarity: Rarity = field(default_factory=Rarity)  # the index, and what lengths are made of
    _latest: datetime | None = None
    _last: tuple[Report, Evidence] | None = None  # decide() then add() read a report once

    def decide(self, report: Report) -> Decision:
        """The story `report` belongs to, with the evidence; does not record it."""
        ev = self._evidence(report)
        scorer = Scorer(self._rarity, len(self._stories))
        scored = _bounded(ev, scorer, self._candidates(ev, scorer))
        if not scored:
            return Decision(story=None)
        # Kept lengths weigh each key as rare as it was when the story counted it in: they
        # rank the candidates. Those near the best are measured afresh (unless no key's rarity
        # moved since they last were), and the best of those decides, ties going to the oldest
        # story, so the choice never depends on the order the stories came in; only the
        # winner is explained.
        top, closest = max(scored, key=lambda r: (r[0], -r[1].id))
        if top < JOIN * NEAR_BEST:
            return _new_story(top, closest)  # far from joining: more than a length drifts
        near = [(score, p) for score, p in scored if score >= top * NEAR_BEST]
        results = [self._afresh(ev, scorer, score, p) for score, p in near]
        best, profile = max(
            results, key=lambda r: (round(r[0], 9), -r[1].first.timestamp(), -r[1].id)
        )
        if best < JOIN:
            return _new_story(best, profile)
        score, why = scorer.score(ev, profile)
        if not why:
            return _new_story(score, profile)
        return Decision(story=profile.id, score=round(score, 3), why=tuple(why))

    def add(self, story: int, report: Report) -> None:
        """Record that `report` is in `story` (new, joined, or moved there by an analyst)."""
        ev = self._evidence(report)
        profile = self._stories.get(story)
        if profile is None:
            profile = self._stories[story] = Profile(story, ev.published, ev.published)
        self._rarity.grow(profile, ev)
        if self._latest is None or ev.published > self._latest + timedelta(hours=1):
            self._latest = ev.published
            # Memory stays bounded even if the caller never forgets: a story silent for two
            # windows past the newest report can no longer be joined by news that is current.
            self.forget_before(self._latest - 2 * self.window)

    def load(self, stories: Iterable[tuple[int, Report]]) -> None:
        """Rebuild the open stories from stored (story id, report) pairs, oldest first."""
        for story, report in stories:
            self.add(story, report)

    def forget_before(self, moment: datetime) -> None:
        """Drop stories whose last report is older than `moment` (memory stays bounded)."""
        for story in [p for p in self._stories.values() if p.last < moment]:
            del self._stories[story.id]
            self._rarity.forget(story)

    def open_stories(self) -> int:
        return len(self._stories)

    def oldest_open(self) -> datetime | None:
        """The last report time of the stalest open story (None when none is open)."""
        return min((p.last for p in self._stories.values()), default=None)

    def index_size(self) -> int:
        """Keys in the inverted index: what memory grows with."""
        return len(self._rarity.index)

    def _afresh(
        self, ev: Evidence, scorer: Scorer, score: float, story: Profile
    ) -> tuple[float, Profile]:
        """The fit of `ev` to `story` with its lengths measured afresh (the same fit if they
        were exact already)."""
        if self._rarity.fresh(story, "") and self._rarity.fresh(story, ev.lang):
            return score, story
        self._rarity.refresh(story, ev.lang)
        return scorer.score(ev, story, explain=False)[0], story

    def _evidence(self, report: Report) -> Evidence:
        if self._last is not None and self._last[0] is report:
            return self._last[1]
        ev = evidence_of(report)
        self._last = (report, ev)
        return ev

    def _candidates(self, ev: Evidence, scorer: Scorer) -> list[tuple[float, Profile]]:
        """The open stories within the window that share the most (by rarity-weighted sum)
        indexed keys with the report, at most `CANDIDATES`, each with the most its fit could
        be; of those, the ones whose fit could reach `JOIN * NEAR_BEST` (else only the first,
        to name it)."""
        common = max(CANDIDATE_MIN, min(CANDIDATE_MAX, len(self._stories) // 2))
        reach = _Reach(self._rarity.index, ev, scorer, common)
        if len(reach.stories) <= CANDIDATES:
            # All of them are candidates, whatever they share: what they share ranks them
            # only for naming the closest when none could join (most reports join one).
            limit = self.window.total_seconds() / 3600
            near = (self._stories[s] for s in reach.stories)
            found = [p for p in near if p.gap_hours(ev.published) <= limit]
            bounded = [(scorer.most(ev, p), p) for p in found]
            possible = [(most, p) for most, p in bounded if _possible(most)]
            return possible or [(scorer.most(ev, p), p) for p in self._ranked(reach, ev)[:1]]
        bounded = [(scorer.most(ev, p), p) for p in self._ranked(reach, ev)]
        return [(most, p) for most, p in bounded if _possible(most)] or bounded[:1]

    def _ranked(self, reach: _Reach, ev: Evidence) -> list[Profile]:
        """The `CANDIDATES` stories within the window sharing the most, most first."""
        limit = self.window.total_seconds() / 3600
        ranked = sorted([(-weight, s) for s, weight in reach.shared().items()])  # then oldest
        near = (self._stories[s] for _, s in ranked)
        return list(
            itertools.islice((p for p in near if p.gap_hours(ev.published) <= limit), CANDIDATES)
        )


class _Reach:
    """The stories sharing indexed keys with a report, found through the index: the keys
    held by at most `common` stories (the holders of commoner keys are not walked), and,
    when asked (`shared`), the summed rarity of those each one holds. The most each one's fit
    could be is `Scorer.most`."""

    def __init__(self, index: Mapping[str, set[int]], ev: Evidence, scorer: Scorer, common: int):
        self._ev, self._scorer = ev, scorer
        self._features: list[str] = []
        holders: list[set[int]] = []
        for f in scorer.vector(ev)[0]:
            found = index.get(f)
            if found and len(found) <= common and kind(f) not in UNINDEXED_KINDS:
                self._features.append(f)
                holders.append(found)
        # The words are many: looked up and filtered at C speed.
        words = list(map(index.get, scorer.report_words(ev)[1]))
        self._held = list(map(bool, words))
        sharing = cast(list[set[int]], list(compress(words, self._held)))
        self._few = list(map(common.__ge__, map(len, sharing)))
        holders += compress(sharing, self._few)
        self._holders = holders
        self.stories: set[int] = set().union(*holders)

    def shared(self) -> dict[int, float]:
        """Story id -> the summed rarity of the walked keys it holds (a word's weight is its
        rarity), features first, in the report's order."""
        values = list(map(self._scorer.weight, self._features))
        weights = self._scorer.report_words(self._ev)[2]
        values += compress(compress(weights, self._held), self._few)
        return _Keys(values, self._holders).sums()


class _Keys:
    """Keys of the index, each as a value and the stories that hold it, in the report's order."""

    def __init__(self, values: list[float], holders: list[set[int]]) -> None:
        self.values = values
        self.holders = holders

    def sum_held(self, story: int) -> float:
        """The sum of the values of the keys `story` holds, in order from 0.0 (at C speed)."""
        held = map(set.__contains__, self.holders, repeat(story))
        return reduce(add, compress(self.values, held), 0.0)

    def sums(self) -> dict[int, float]:
        """`sum_held` of each story holding any key. Many keys held by the same few stories
        (a wire's copies) are summed story by story at C speed; keys held by many different
        stories key by key (a Python loop over each holder). Either way each story's sum
        adds the same terms in the same order, so both give the same floats."""
        if not self.holders:
            return {}
        stories: set[int] = set().union(*self.holders)
        if len(stories) * len(self.holders) <= 2 * sum(map(len, self.holders)):
            return {story: self.sum_held(story) for story in stories}
        shared: dict[int, float] = {}
        get = shared.get
        for value, holders in zip(self.values, self.holders, strict=True):
            for story in holders:  # the hot loop of deciding: kept inline
                shared[story] = get(story, 0.0) + value
        return shared


def _possible(most: float) -> bool:
    return most >= JOIN * NEAR_BEST * (1 - 1e-9)


def _bounded(
    ev: Evidence, scorer: Scorer, candidates: list[tuple[float, Profile]]
) -> list[tuple[float, Profile]]:
    """The candidates' fits, highest bound first, leaving out those whose bound is below a
    share `NEAR_BEST` of the best fit so far: they could be neither the best nor near it."""
    scored: list[tuple[float, Profile]] = []
    top = 0.0
    for most, story in sorted(candidates, key=lambda c: (-c[0], c[1].id)):
        if scored and most < top * NEAR_BEST * (1 - 1e-9):
            break
        score = scorer.score(ev, story, explain=False)[0]
        scored.append((score, story))
        top = max(top, score)
    return scored

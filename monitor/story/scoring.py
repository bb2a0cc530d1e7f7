"""How well a report fits an open story: a weighted sum of shared evidence, in the manner of
EMM's cross-language cluster linking (concepts, places and names), with three changes.

1. Rarity is counted over the open stories, not over reports: a feature that six reports of
   one story share is not common, one that a dozen stories have is. Each key weighs
   ln((N + B + 1) / (df + 1)), N the open stories, df those that have the key; countries and
   the shingles of place names count as present in half of B virtual stories, so that even a
   quiet day knows "China" says little.
2. Both sides are vectors (the story's is the share of its reports having each feature) and
   the fit is their cosine: what the report names and the story lacks, and what the story is
   about and the report never names, both pull the fit down. So two incidents at different
   shoals, which share the coast guards, the countries and the rule, differ by the shoals.
3. Within one language the texts are compared too (cosine of rare-weighted shingles), and
   everything fades with the time between the report and the story's span (half the weight
   after `HALF_LIFE`). The evidence a decision names is the shared part, largest first.

A report joins the best-fitting story when the fit reaches `JOIN` and something shared is
more than countries and capitals (`_strong`), or words in its language are, or a capital is
while the news is breaking (`_thin`); otherwise it starts its own story. Where only countries
and capitals are shared, the words carry the link (`WEAK_FIT_SHARE`, `WEAK_TEXT_WEIGHT`).
Precision first: a report that only weakly fits is shown as a development of its own, and
two guards keep look-alikes apart: places below a country that differ (`PLACE_CONFLICT`), and
a report saying it follows an earlier development ("again", "a day after": `SEQUEL_GAP`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from itertools import compress
from operator import add, mul

from monitor.story.profile import KIND_WEIGHT, WEAK_KINDS, Evidence, Profile, kind
from monitor.story.rarity import BACKGROUND, Rarity

JOIN = 0.3  # the fit at which a report joins a story
TEXT_WEIGHT = 0.5  # a same-language text cosine of 1 adds this much to the fit
HALF_LIFE = 12.0  # hours between report and story at which the fit halves
CANDIDATE_MIN = 8  # a key held by at most this many stories always makes them candidates
# A key held by more stories than this finds no candidates (a rule or a common word would make
# each report walk hundreds of stories); rarer keys it shares still find them.
CANDIDATE_MAX = 64
NEAR_BEST = 0.8  # candidates scoring this share of the best are scored again, measured afresh
CANDIDATES = 8  # stories scored in full for one report: those sharing the most with it
# A report saying it follows an earlier development never joins a story begun this long
# before it: a second launch "again" two days on is news of its own.
SEQUEL_GAP = timedelta(hours=6)
# The fit is multiplied by this when the report and the story both name places below a
# country and none is the same: two quakes, two shoals, two capitals' meetings.
PLACE_CONFLICT = 0.5
THIN_GAP = 3.0  # hours within which a shared capital (and countries) is enough
# When a report shares nothing but countries and capitals with a story in its own language,
# the words must carry the link: the features' fit counts this share of itself and the text
# this weight. Two reports that name only Tokyo and Japan have near-identical feature vectors
# whatever they tell (a summit, an explosion at the station); their words tell them apart.
WEAK_FIT_SHARE = 0.25
WEAK_TEXT_WEIGHT = 1.0
WHY_MAX = 6  # evidence phrases a decision names, besides the words and the time


class Scorer:
    """Scores reports against stories over one state of the open stories.

    What a report shares with a story is read once per decision (`shared`): the bound that
    ranks the candidates, each scoring of them, measuring afresh (which moves only the story's
    length) and the winner's explanation are all made of it, summed in the same order."""

    def __init__(self, rarity: Rarity, stories: int) -> None:
        self._rarity = rarity
        self._logs = rarity.logs
        self._top = math.log(stories + BACKGROUND + 1)
        self._ev: Evidence | None = None  # the report the vectors and shares below are of
        self._feature_vector: tuple[dict[str, float], float] = ({}, 0.0)  # weights, length
        self._word_norm = 0.0
        self._shares: dict[int, Shared] = {}  # story id -> what the report shares with it
        # Story id -> which of the report's words it holds in their language (in its order).
        self._held: dict[int, list[bool]] = {}
        self._feature_squares: list[float] = []  # the report's squared feature weights
        # Its words, their index keys, weights and squared weights, in the order of its vector.
        self._words: tuple[list[str], list[str], list[float], list[float]] = ([], [], [], [])

    def weight(self, key: str) -> float:
        """How rare `key` is among the open stories (see the module docstring)."""
        log = self._logs.get(key)  # an indexed key's, without a call
        if log is None:
            log = self._rarity.log_df(key)
        rare = self._top - log
        return rare if rare > 0.0 else 0.0

    def vector(self, ev: Evidence) -> tuple[dict[str, float], float]:
        """The report's weighted features and their length, once per report."""
        if ev is not self._ev:
            self._read(ev)
        return self._feature_vector

    def _read(self, ev: Evidence) -> None:
        weight = self.weight
        features = {f: KIND_WEIGHT[kind(f)] * weight(f) for f in ev.features}
        # A word's weight is its rarity. Words are many: read at C speed where it can be.
        order = list(ev.words)
        keys = list(map(ev.keys.__getitem__, order))
        top = self._top
        logs = self._rarity.word_logs(ev.lang, order, keys)
        weights = [d if (d := top - log) > 0.0 else 0.0 for log in logs]
        squares = [v * v for v in weights]
        self._ev, self._shares, self._held = ev, {}, {}
        self._words = (order, keys, weights, squares)
        self._feature_squares = [v * v for v in features.values()]
        self._feature_vector = (features, _norm(features.values()))
        self._word_norm = math.sqrt(sum(squares))

    def report_words(self, ev: Evidence) -> tuple[list[str], list[str], list[float], list[float]]:
        """The report's words, their index keys, weights and squared weights, in the order
        of its vector."""
        if ev is not self._ev:
            self._read(ev)
        return self._words

    def most(self, ev: Evidence, story: Profile) -> float:
        """The most the fit of `ev` to `story` could be: a cosine is at most the share of
        the report's length that the story shares (Cauchy-Schwarz). Time, sequels and place
        conflicts only lower a fit, so a story below `JOIN * NEAR_BEST` here can neither
        join nor be near the best of those that could: it need not be scored."""
        if ev is not self._ev:
            self._read(ev)
        (features, feature_norm), word_norm = self._feature_vector, self._word_norm
        most = 0.0
        if feature_norm:
            held = map(story.features.__contains__, features)
            shared = reduce(add, compress(self._feature_squares, held), 0.0)
            most += math.sqrt(shared) / feature_norm
        text = 0.0
        if word_norm:
            shared = reduce(add, compress(self._words[3], self._held_words(ev, story)), 0.0)
            text = math.sqrt(shared) / word_norm
        # The fit weighs the two as one of `score`'s two cases does: the larger bounds both.
        return max(most + TEXT_WEIGHT * text, WEAK_FIT_SHARE * most + WEAK_TEXT_WEIGHT * text)

    def _held_words(self, ev: Evidence, story: Profile) -> list[bool]:
        """Which of the report's words `story` holds in their language (read once per
        report and story: bounding and scoring both ask)."""
        held = self._held.get(story.id)
        if held is None:
            counts = story.words.get(ev.lang)
            held = list(map(counts.__contains__, self._words[0])) if counts else []
            self._held[story.id] = held
        return held

    def shared(self, ev: Evidence, story: Profile) -> Shared:
        """What `ev` shares with `story` (read once per report and story)."""
        if ev is not self._ev:
            self._read(ev)
        found = self._shares.get(story.id)
        if found is None:
            found = self._shares[story.id] = self._share(ev, story)
        return found

    def _share(self, ev: Evidence, story: Profile) -> Shared:
        mine = self._feature_vector[0]
        counts, size = story.features, story.size
        features = [(f, w * w * n / size) for f, w in mine.items() if (n := counts.get(f))]
        in_lang = story.words.get(ev.lang)
        words: list[str] = []
        word_dot = 0.0
        if in_lang:
            held = self._held_words(ev, story)
            words, word_dot = self._shared_words(in_lang, held, story.langs[ev.lang])
        return Shared(
            features=features,
            feature_dot=sum([v for _, v in features]),
            words=words,
            word_dot=word_dot,
            gap=story.gap_hours(ev.published),
        )

    def _shared_words(
        self, counts: Mapping[str, int], held: list[bool], members: int
    ) -> tuple[list[str], float]:
        """The report's words a story's `counts` in its language hold (`held`, in the
        report's order) and their dot product over its `members` there, at C speed: words
        are many."""
        order, _, _, squares = self._words
        words = list(compress(order, held))
        if not words:
            return [], 0.0
        dot = sum(map(mul, compress(squares, held), map(counts.__getitem__, words)))
        return words, dot / members

    def _story_norm(self, story: Profile, lang: str | None) -> float:
        """The length of the story's feature vector (`lang` None) or of its words in `lang`,
        with today's weights (see `Rarity`)."""
        sums = story.sums.get("" if lang is None else lang)
        if sums is None:
            return 0.0
        size = story.size if lang is None else story.langs[lang]
        top = self._top
        square = top * top * sums[0] - 2 * top * sums[1] + sums[2]
        return math.sqrt(square) / size if square > 0.0 else 0.0

    def score(self, ev: Evidence, story: Profile, explain: bool = True) -> tuple[float, list[str]]:
        """The fit of `ev` to `story` and the phrases that explain it (empty: no fit, or
        not asked for with `explain` false)."""
        if ev.sequel and ev.published - story.first > SEQUEL_GAP:
            return 0.0, []  # "again", "a day after": a development after this story began
        part = self.shared(ev, story)
        fit, shared = self._features(part, story)
        text, words = self._text(ev, part, story)
        gap = part.gap
        strong = _strong(shared)
        if not words and not (strong or _thin(shared, gap)):
            return 0.0, []
        if words and not strong:  # countries and capitals only: the words carry the link
            total = WEAK_FIT_SHARE * fit + WEAK_TEXT_WEIGHT * text
        else:
            total = fit + TEXT_WEIGHT * text
        total *= 0.5 ** (gap / HALF_LIFE)
        if ev.places and story.places and ev.places.isdisjoint(story.places):
            total *= PLACE_CONFLICT  # Hualien is not Miyagi, whatever else they share
        if not explain:
            return total, []
        why = [_phrase(f) for f, _ in sorted(shared, key=lambda s: (-s[1], s[0]))[:WHY_MAX]]
        if words:
            order, _, weights, _ = self._words  # the rarest three, by name on a tie
            mine = dict(zip(order, weights, strict=True))
            why.append("same words: " + ", ".join(w for _, w in sorted(_rarest(mine, words))[:3]))
        why.append(_when(ev, story, gap))
        return total, why

    def _features(self, part: Shared, story: Profile) -> tuple[float, list[tuple[str, float]]]:
        norm = self._feature_vector[1] * self._story_norm(story, None)
        if not norm:
            return 0.0, []
        return part.feature_dot / norm, [(f, v) for f, v in part.features if v > 0]

    def _text(self, ev: Evidence, part: Shared, story: Profile) -> tuple[float, list[str]]:
        if not part.words:
            return 0.0, []
        norm = self._word_norm * self._story_norm(story, ev.lang)
        if not norm:
            return 0.0, []
        return part.word_dot / norm, part.words  # explained (the rarest three) only for the winner


@dataclass(slots=True)
class Shared:
    """What a report shares with a story, in the report's order: each shared feature with its
    term of the dot product, and their sum; the shared words and their dot product over the
    story's reports in the language; and the hours between them."""

    features: list[tuple[str, float]]
    feature_dot: float
    words: list[str]
    word_dot: float
    gap: float


def _rarest(mine: Mapping[str, float], words: list[str]) -> list[tuple[float, str]]:
    return [(-mine[w], w) for w in words]


def _strong(shared: list[tuple[str, float]]) -> bool:
    """Whether something more than countries and capitals is shared: enough for a link
    without shared words, and for the features' fit to count in full."""
    return any(kind(f) not in WEAK_KINDS for f, _ in shared)


def _thin(shared: list[tuple[str, float]], gap: float) -> bool:
    """Whether a capital, with countries, is enough without shared words: while the news is
    breaking (a meeting in Tokyo told in three languages the same hours; never a day on)."""
    return gap <= THIN_GAP and any(kind(f) == "capital" for f, _ in shared)


def _norm(values: Iterable[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def _phrase(feature: str) -> str:
    name, _, value = feature.partition(":")
    label = {"op": "operation", "capital": "entity"}.get(name, name)
    return f"{label} {value}"


def _when(ev: Evidence, story: Profile, gap: float) -> str:
    """`2 h after`, `within its span`, `1 h before`: where the report falls in time."""
    if gap == 0:
        return "within its time span"
    side = "before" if ev.published < story.first else "after"
    return f"{gap:.0f} h {side}" if gap >= 1 else f"{gap * 60:.0f} min {side}"

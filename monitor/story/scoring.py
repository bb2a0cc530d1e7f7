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
more than countries and capitals (see `_enough`); otherwise it starts its own story.
Precision first: a report that only weakly fits is shown as a development of its own, and
two guards keep look-alikes apart: places below a country that differ (`PLACE_CONFLICT`), and
a report saying it follows an earlier development ("again", "a day after": `SEQUEL_GAP`).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta

from monitor.story.grouping import place_shingles
from monitor.story.profile import KIND_WEIGHT, WEAK_KINDS, Evidence, Profile, kind

JOIN = 0.3  # the fit at which a report joins a story
TEXT_WEIGHT = 0.5  # a same-language text cosine of 1 adds this much to the fit
HALF_LIFE = 12.0  # hours between report and story at which the fit halves
BACKGROUND = 20  # virtual stories in half of which countries and place names appear
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
WHY_MAX = 6  # evidence phrases a decision names, besides the words and the time
# Keys of the kinds (prefixes) that, like place names, count as present in BACKGROUND / 2.
_COMMON_KINDS = ("region:", "count:")


class Rarity:
    """The inverted index of the open stories (key -> story ids), how rare each key is, and
    what each story's vector lengths are made of, kept as stories grow and go.

    A key's weight is `top - l`, `top` = ln(N + BACKGROUND + 1) and l = ln(df + background + 1),
    so a story's squared length is `top² T0 - 2 top T1 + T2` over its size², with T0 the sum
    of m, T1 of m·l, T2 of m·l², m a key's count (times its kind's weight) squared. Reading a
    length costs three numbers, where measuring it afresh cost the whole story at every
    decision. N moves only `top`, so it is always current; each key's l is the one it had when
    the story last counted it (updating every holder of a key whenever its df moves cost more
    than all the rest of linking): a key that has since spread to other stories is weighed a
    little high in the length, so a fit errs low, on the side of a new story.

    `version` counts the changes of any key's l: a story's lengths measured (or kept exact
    by its own growth) since the last change need no measuring afresh (`fresh`). Where the
    words are few and repeat (a wire's copies), most reports change no l, and measuring
    afresh was a quarter of linking.
    """

    def __init__(self) -> None:
        self.version = 0
        self.index: dict[str, set[int]] = {}
        self._log: dict[str, float] = {}  # indexed key -> ln(df + background + 1)
        self._bg: dict[str, int] = {}  # indexed key -> its background stories
        self._places = place_shingles()

    @property
    def logs(self) -> Mapping[str, float]:
        """ln(df + background + 1) of each indexed key (`log_df` of the others)."""
        return self._log

    def log_df(self, key: str) -> float:
        found = self._log.get(key)
        return math.log(self._background(key) + 1) if found is None else found

    def _background(self, key: str) -> int:
        known = self._bg.get(key)
        if known is not None:
            return known
        if key.startswith(_COMMON_KINDS) or key[key.index(":") + 1 :] in self._places:
            return BACKGROUND // 2
        return 0

    def grow(self, story: Profile, ev: Evidence) -> None:
        """Count `ev` into `story`: its counts, the index, and its lengths."""
        counts, words = story.features, story.words.get(ev.lang, Counter[str]())
        old = [(f, counts[f]) for f in ev.features]
        old_words = [(w, words[w]) for w in ev.words]
        # The lengths that are exact now stay so: what grows is counted with today's l.
        exact = [part for part in ("", ev.lang) if self.fresh(story, part)]
        new_features, new_words = story.add(ev)
        if new_features or new_words:
            self.version += 1  # the l of each of them moves
        index, logs, backgrounds = self.index, self._log, self._bg
        for key in new_features | new_words:  # the hot loop of growing: kept inline
            holders = index.get(key)
            if holders is None:
                holders = index[key] = set()
                backgrounds[key] = self._background(key)
            holders.add(story.id)
            logs[key] = math.log(len(holders) + backgrounds[key] + 1)
        # Every key of `ev` is indexed now; its mass grows from (k·n)² to (k·(n+1))².
        lang = ev.lang
        masses = ((f, KIND_WEIGHT[kind(f)] ** 2 * (2 * n + 1)) for f, n in old)
        _add(story.sums.setdefault("", [0.0, 0.0, 0.0]), _sums(masses, logs))
        keys = ev.keys
        masses = ((keys[w], 2 * n + 1) for w, n in old_words)
        _add(story.sums.setdefault(lang, [0.0, 0.0, 0.0]), _sums(masses, logs))
        story.synced.update(dict.fromkeys(exact, self.version))

    def fresh(self, story: Profile, part: str) -> bool:
        """Whether the story's kept length `part` ("" features, else a language) is as
        measuring it afresh would give: no key's l moved since (or it has none yet)."""
        if part not in story.sums:
            return True
        return story.synced.get(part) == self.version

    def forget(self, story: Profile) -> None:
        """Take `story` out of the index: its keys grow rarer."""
        self.version += 1
        for key in story.index_keys():
            holders = self.index.get(key)
            if holders is None:
                continue
            holders.discard(story.id)
            if holders:
                self._log[key] = math.log(len(holders) + self._bg[key] + 1)
            else:
                del self.index[key], self._log[key], self._bg[key]

    def refresh(self, story: Profile, lang: str) -> None:
        """Measure afresh, with today's rarities, the story's feature length and its length in
        `lang` (what scoring a report in `lang` reads; see `Linker.decide`)."""
        logs = self._log
        if not self.fresh(story, ""):
            masses = ((f, (KIND_WEIGHT[kind(f)] * n) ** 2) for f, n in story.features.items())
            story.sums[""] = _sums(masses, logs)
            story.synced[""] = self.version
        counts = story.words.get(lang)
        if counts and not self.fresh(story, lang):
            story.sums[lang] = _sums(((f"{lang}:{w}", n * n) for w, n in counts.items()), logs)
            story.synced[lang] = self.version


def _sums(masses: Iterable[tuple[str, float]], logs: Mapping[str, float]) -> list[float]:
    """T0, T1, T2 of `Rarity` over (key, mass) pairs; a loop of its own: it is the hot one."""
    t0 = t1 = t2 = 0.0
    for key, mass in masses:
        log = logs[key]
        t0 += mass
        t1 += mass * log
        t2 += mass * log * log
    return [t0, t1, t2]


def _add(sums: list[float], more: list[float]) -> None:
    for i, value in enumerate(more):
        sums[i] += value


class Scorer:
    """Scores reports against stories over one state of the open stories."""

    def __init__(self, rarity: Rarity, stories: int) -> None:
        self._rarity = rarity
        self._logs = rarity.logs
        self._top = math.log(stories + BACKGROUND + 1)
        self._known: dict[str, float] = {}  # key -> weight: one decision asks many times
        self._vectors: dict[tuple[int, bool], tuple[dict[str, float], float]] = {}

    def weight(self, key: str) -> float:
        """How rare `key` is among the open stories (see the module docstring)."""
        known = self._known.get(key)
        if known is None:
            log = self._logs.get(key)  # an indexed key's, without a call
            if log is None:
                log = self._rarity.log_df(key)
            known = self._known[key] = max(0.0, self._top - log)
        return known

    def vector(self, ev: Evidence, words: bool = False) -> tuple[dict[str, float], float]:
        """The report's weighted features (or words) and their length, once per report."""
        key = (id(ev), words)
        found = self._vectors.get(key)
        if found is None:
            if words:
                keys, weight = ev.keys, self.weight  # the hot loop of a decision's start
                vector = {w: weight(keys[w]) for w in ev.words}
            else:
                vector = {f: KIND_WEIGHT[kind(f)] * self.weight(f) for f in ev.features}
            found = self._vectors[key] = (vector, _norm(vector.values()))
        return found

    def _story_norm(self, story: Profile, lang: str | None) -> float:
        """The length of the story's feature vector (`lang` None) or of its words in `lang`,
        with today's weights (see `Rarity`)."""
        sums = story.sums.get("" if lang is None else lang)
        if sums is None:
            return 0.0
        size = story.size if lang is None else story.langs[lang]
        top = self._top
        square = top * top * sums[0] - 2 * top * sums[1] + sums[2]
        return math.sqrt(max(0.0, square)) / size

    def score(self, ev: Evidence, story: Profile, explain: bool = True) -> tuple[float, list[str]]:
        """The fit of `ev` to `story` and the phrases that explain it (empty: no fit, or
        not asked for with `explain` false)."""
        if ev.sequel and ev.published - story.first > SEQUEL_GAP:
            return 0.0, []  # "again", "a day after": a development after this story began
        fit, shared = self._features(ev, story)
        text, words = self._text(ev, story)
        gap = story.gap_hours(ev.published)
        if not words and not _enough(shared, gap):
            return 0.0, []
        total = (fit + TEXT_WEIGHT * text) * 0.5 ** (gap / HALF_LIFE)
        if ev.places and story.places and not ev.places & story.places:
            total *= PLACE_CONFLICT  # Hualien is not Miyagi, whatever else they share
        if not explain:
            return total, []
        why = [_phrase(f) for f, _ in sorted(shared, key=lambda s: (-s[1], s[0]))[:WHY_MAX]]
        if words:
            mine = self.vector(ev, words=True)[0]
            top = heapq.nsmallest(3, words, key=lambda w: (-mine[w], w))
            why.append("same words: " + ", ".join(top))
        why.append(_when(ev, story, gap))
        return total, why

    def _features(self, ev: Evidence, story: Profile) -> tuple[float, list[tuple[str, float]]]:
        mine, mine_norm = self.vector(ev)
        counts, size = story.features, story.size
        shared = [(f, w * w * n / size) for f, w in mine.items() if (n := counts.get(f))]
        norm = mine_norm * self._story_norm(story, None)
        if not norm:
            return 0.0, []
        return sum(v for _, v in shared) / norm, [(f, v) for f, v in shared if v > 0]

    def _text(self, ev: Evidence, story: Profile) -> tuple[float, list[str]]:
        counts = story.words.get(ev.lang)
        if not counts:
            return 0.0, []
        members = story.langs[ev.lang]
        mine, mine_norm = self.vector(ev, words=True)
        shared = [w for w in mine if w in counts]
        norm = mine_norm * self._story_norm(story, ev.lang)
        if not norm or not shared:
            return 0.0, []
        dot = sum([mine[w] * mine[w] * counts[w] for w in shared]) / members
        return dot / norm, shared  # explained (the rarest three) only for the winner


def _enough(shared: list[tuple[str, float]], gap: float) -> bool:
    """Whether shared features can make a link without shared words: something more than
    countries and capitals, or a capital while the news is breaking (a meeting in Tokyo told
    in three languages the same hours; never a day on)."""
    if any(kind(f) not in WEAK_KINDS for f, _ in shared):
        return True
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

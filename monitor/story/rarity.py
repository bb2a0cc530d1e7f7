"""How rare each key of the open stories is, and what their vector lengths are made of.

`Rarity` keeps the inverted index of the open stories and, for each story, three sums from
which its lengths are read at any moment (see its docstring); `monitor.story.scoring` weighs
and scores with them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from itertools import repeat
from operator import add, mul
from typing import cast

from monitor.story.grouping import place_shingles
from monitor.story.profile import KIND_WEIGHT, Evidence, Profile, kind

BACKGROUND = 20  # virtual stories in half of which countries and place names appear
# Keys of the kinds (prefixes) that, like place names, count as present in BACKGROUND / 2.
_COMMON_KINDS = ("region:", "count:")
_KIND_SQUARE = {name: weight**2 for name, weight in KIND_WEIGHT.items()}
_PLACE_LOG = math.log(BACKGROUND // 2 + 1)  # `Rarity.log_df` of a place name no story holds


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

    def word_logs(self, lang: str, words: list[str], keys: list[str]) -> list[float]:
        """`log_df` of each of `words` in `lang` (`keys` their index keys, `lang:word`), at
        C speed for those some story holds."""
        found = list(map(self._log.get, keys))
        if None not in found:
            return cast(list[float], found)
        if ":" in lang or f"{lang}:".startswith(_COMMON_KINDS):
            pairs = zip(keys, found, strict=True)
            return [self.log_df(k) if log is None else log for k, log in pairs]
        # What `_background` gives a word no story holds: only a place name's has any.
        places = self._places
        return [
            (_PLACE_LOG if w in places else 0.0) if log is None else log
            for w, log in zip(words, found, strict=True)
        ]

    def _background(self, key: str) -> int:
        known = self._bg.get(key)
        if known is not None:
            return known
        if key.startswith(_COMMON_KINDS) or key[key.index(":") + 1 :] in self._places:
            return BACKGROUND // 2
        return 0

    def grow(self, story: Profile, ev: Evidence) -> None:
        """Count `ev` into `story`: its counts, the index, and its lengths."""
        features, counts = list(ev.features), story.features
        old = [counts.get(f, 0) for f in features]
        words, lang = list(ev.words), ev.lang
        in_lang = story.words.get(lang)
        old_words = list(map(in_lang.get, words, repeat(0))) if in_lang else [0] * len(words)
        # The lengths that are exact now stay so: what grows is counted with today's l.
        exact = [part for part in ("", lang) if self.fresh(story, part)]
        new_features, new_words = story.add(ev)
        if new_features or new_words:
            self.version += 1  # the l of each of them moves
            self._hold(story.id, new_features)
            self._hold(story.id, new_words)
        # Every key of `ev` is indexed now; its mass grows from (k·n)² to (k·(n+1))².
        masses = [_KIND_SQUARE[kind(f)] * (2 * n + 1) for f, n in zip(features, old, strict=True)]
        _add(story.sums.setdefault("", [0.0, 0.0, 0.0]), _sums(features, masses, self._log))
        keys = list(map(ev.keys.__getitem__, words))
        masses_in_lang = [2 * n + 1 for n in old_words]
        _add(story.sums.setdefault(lang, [0.0, 0.0, 0.0]), _sums(keys, masses_in_lang, self._log))
        story.synced.update(dict.fromkeys(exact, self.version))

    def _hold(self, story: int, keys: Iterable[str]) -> None:
        """Index `story` under `keys` it did not have: their l moves."""
        index, logs, backgrounds = self.index, self._log, self._bg
        for key in keys:  # the hot loop of growing: kept inline
            holders = index.get(key)
            if holders is None:
                holders = index[key] = set()
                backgrounds[key] = self._background(key)
            holders.add(story)
            logs[key] = math.log(len(holders) + backgrounds[key] + 1)

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
            counts = story.features
            masses = [(KIND_WEIGHT[kind(f)] * n) ** 2 for f, n in counts.items()]
            story.sums[""] = _sums(list(counts), masses, logs)
            story.synced[""] = self.version
        words = story.words.get(lang)
        if words and not self.fresh(story, lang):
            squares = [n * n for n in words.values()]
            story.sums[lang] = _sums(story.keys[lang], squares, logs)
            story.synced[lang] = self.version


def _sums(keys: list[str], masses: Sequence[float], logs: Mapping[str, float]) -> list[float]:
    """T0, T1, T2 of `Rarity` over keys and their masses: the hot loop of growing and of
    measuring afresh, at C speed. Each is summed in order from 0.0, one term at a time."""
    found = list(map(logs.__getitem__, keys))
    firsts = list(map(mul, masses, found))
    seconds = map(mul, firsts, found)
    return [reduce(add, masses, 0.0), reduce(add, firsts, 0.0), reduce(add, seconds, 0.0)]


def _add(sums: list[float], more: list[float]) -> None:
    for i, value in enumerate(more):
        sums[i] += value

"""What one scan of an item found (`Scan`), and the state its rules are evaluated against
(`_Ctx`): the scan plus the positions of terms and phrases (`_Matchable`), computed only when a
rule asks.

Below both the compiler (`compiler.py`), whose closures read a `_Ctx`, and the `Matcher`
(`engine.py`), which fills a `Scan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

from monitor.match import textnorm as tn
from monitor.models import Feed, Item

BOTH = (0, 1)  # field indexes: 0 title, 1 summary
Span = tuple[int, int, int]  # (field, start, end) in the folded field text


@dataclass(frozen=True)
class _Matchable:
    """A term or phrase, folded. `pid` signals it (its longest word); it needs all of `needs`
    present. `cjk`: a single word of the second automaton, whose hits give its spans."""

    label: str
    words: tuple[str, ...]
    prefix: bool
    pid: int
    needs: frozenset[int]
    cjk: bool

    def find(self, text: str) -> list[tuple[int, int]]:
        if len(self.words) == 1:
            return tn.find_word(text, self.words[0], prefix=self.prefix)
        return tn.find_phrase(text, self.words, prefix=self.prefix)


class Scan:
    """What one scan of an item found, before any rule is evaluated."""

    def __init__(self, fields: tuple[tuple[str, str | None], ...], found: set[int],
                 aliases: dict[int, list[str]], words: bytes) -> None:  # fmt: skip
        self._fields = fields  # (raw, folded or None if plain) for title and summary
        self.found = found  # pids present in either field
        # The Latin/Cyrillic/Greek words of both folded fields, in UTF-8, space-separated
        # (`textnorm.word_bytes`): what the word automaton ran over, and what story shingles
        # are made of, not looked for again.
        self.words = words
        self.cjk_spans: dict[int, list[Span]] = {}  # matchable -> spans, second automaton
        self.cjk_aliases: list[tuple[str, int, int, int]] = []
        self._aliases = aliases  # pid of an alias's longest word -> the aliases
        self._texts: tuple[str, str] | None = None

    @property
    def texts(self) -> tuple[str, str]:
        """The folded title and summary."""
        if self._texts is None:  # not a cached_property: before 3.12, that takes a lock
            (title, folded_title), (summary, folded_summary) = self._fields
            self._texts = (
                title.lower() if folded_title is None else folded_title,
                summary.lower() if folded_summary is None else folded_summary,
            )
        return self._texts

    @property
    def alias_hits(self) -> list[tuple[str, int, int, int]]:
        """Every whole match of an alias: (folded alias, field, start, end), in text order."""
        hits = list(self.cjk_aliases)
        texts = self.texts
        for pid in self.found & self._aliases.keys():
            for alias in self._aliases[pid]:
                for f in BOTH:
                    # Many aliases share a key word (`council`): most are not there at all,
                    # which `in` tells at C speed, before the boundary checks of find_word.
                    if alias in texts[f]:
                        hits += [(alias, f, s, e) for s, e in tn.find_word(texts[f], alias)]
        return sorted(hits, key=itemgetter(1, 2, 3))


class _Ctx:
    """Evaluation state for one item: the scan plus positions, computed only when needed."""

    __slots__ = ("cache", "feed", "found", "item", "matchables", "scan")

    def __init__(self, scan: Scan, item: Item, feed: Feed | None, matchables: list[_Matchable]):
        self.scan, self.item, self.feed, self.matchables = scan, item, feed, matchables
        self.found = scan.found
        self.cache: dict[int, list[Span]] = {}

    def has(self, mid: int) -> bool:
        m = self.matchables[mid]
        return self.found.issuperset(m.needs) and (len(m.words) == 1 or bool(self.spans(mid)))

    def spans(self, mid: int, fields: tuple[int, ...] = BOTH) -> list[Span]:
        found = self.cache.get(mid)
        if found is None:
            found = self.cache[mid] = self._find(mid)
        return found if fields is BOTH else [s for s in found if s[0] in fields]

    def _find(self, mid: int) -> list[Span]:
        matchable = self.matchables[mid]
        if matchable.cjk:
            return self.scan.cjk_spans.get(mid, [])
        if not self.found.issuperset(matchable.needs):
            return []
        return [(f, s, e) for f in BOTH for s, e in matchable.find(self.scan.texts[f])]

    def near(self, n: int, left: list[Span], right: list[Span]) -> list[Span]:
        """Spans covering a left and a right span at most `n` tokens apart, in one field."""
        out = []
        for a in left:
            for b in right:
                first, second = (a, b) if a[1] <= b[1] else (b, a)
                text = self.scan.texts[a[0]]
                if a[0] == b[0] and tn.token_distance(text, first[1:], second[1], n) <= n:
                    out.append((a[0], first[1], max(a[2], b[2])))
        return out

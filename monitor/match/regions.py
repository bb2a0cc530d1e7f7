"""Region tagging: which countries and places an item is about, from its title and summary.

The gazetteer comes from three layers of files (the package-derived country table, the curated
additions, the user's `rules/regions.yaml`): see `monitor.regionfile` for them and their format.

Resolving the raw hits of the aliases in a text follows these rules, in order:

- Only whole matches count, by the script of the alias (`textnorm.boundary_ok`).
- Longest match wins: among overlapping hits the longest is kept and the shorter ones inside
  it are dropped (`South Sudan` is not `Sudan`, `China Airlines` is not `China`).
- A blocker (an alias with no codes) that wins tags nothing: that is how `New Mexico`, `fine
  china` or `Air Jordan` stay silent.
- An ambiguous alias tags only when its condition holds: `requires` names context (words, or
  `@CODE` for a region tagged unconditionally elsewhere in the text) of which at least one
  must be present; `unless` names context of which none may be present; `exact` asks for the
  alias with its own capitalisation (`US`, not `us`).
- A tagged region brings its `parent` (the administering country: Senkaku -> JP, Hong Kong ->
  CN) and its `group` (a sea or area code: SENKAKU -> ECS), transitively.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from ahocorasick_rs import AhoCorasick

from monitor.match.compounds import press_compounds
from monitor.match.regionfile import Layers, Region, load_layers
from monitor.match.textnorm import Script, boundary_ok, fold, term_script

Hit = tuple[int, int, int]  # (alias index, start, end) in folded text; end is exclusive
__all__ = ["Alias", "Gazetteer", "Hit", "Region", "load_gazetteer"]


@dataclass(frozen=True, slots=True)
class Alias:
    """One searchable name. `text` is folded; equal texts are separate aliases."""

    text: str
    codes: tuple[str, ...]  # () for a blocker or a context word
    script: Script
    lang: str  # en | ja | zh | ko, or "" for context words
    requires: tuple[str, ...] = ()  # folded context words or "@CODE": one must be present
    unless: tuple[str, ...] = ()  # same form: none may be present
    exact: str = ""  # NFKC form that must occur as written (case-sensitive) in the raw text
    context: bool = False  # only a context word: never tags, never blocks

    @property
    def code(self) -> str | None:
        return self.codes[0] if self.codes else None

    @property
    def conditional(self) -> bool:
        return bool(self.requires or self.unless or self.exact)


class Gazetteer:
    """The regions and their aliases; `tag` is safe to call from several threads."""

    def __init__(self, regions: dict[str, Region], aliases: tuple[Alias, ...]) -> None:
        self._regions = regions
        self.aliases = aliases
        self.codes = frozenset(regions)
        closure = {code: self._ancestry(code) for code in regions}
        # Per alias, precomputed for the hot path: None for a context word, else whether it is
        # conditional and the codes it tags with their parents and groups.
        self._plan = tuple(_plan(alias, closure) for alias in aliases)
        self._exact = {a.exact: _exact_pattern(a.exact) for a in aliases if a.exact}
        by_text: dict[str, list[int]] = {}
        for index, alias in enumerate(aliases):
            by_text.setdefault(alias.text, []).append(index)
        self._by_text = {text: tuple(ix) for text, ix in by_text.items()}

    def __getstate__(self) -> dict[str, object]:
        # Sent to parse workers: the automaton is a cache (not picklable), rebuilt there.
        state = dict(self.__dict__)
        state.pop("_automaton", None)
        return state

    def region(self, code: str) -> Region:
        """The region of `code` (any case); KeyError if there is none."""
        return self._regions[code.upper()]

    def _ancestry(self, code: str) -> tuple[str, ...]:
        out: list[str] = []
        todo = [code]
        while todo:
            current = todo.pop()
            if current in out or current not in self._regions:
                continue
            out.append(current)
            region = self._regions[current]
            todo.extend(c for c in (region.parent, region.group) if c)
        return tuple(out)

    def indices(self, text: str) -> tuple[int, ...]:
        """The aliases spelled `text` (folded): turns another scanner's hits into `Hit`s."""
        return self._by_text.get(text, ())

    @cached_property
    def _automaton(self) -> tuple[AhoCorasick, list[tuple[Script, bool, tuple[int, ...]]]]:
        """One pattern per distinct folded text: its script, katakana edges, alias indices.

        Built on first use, then read-only (safe to share between threads).
        """
        entries = [
            (self.aliases[ix[0]].script, _has_kana_edge(text), ix)
            for text, ix in self._by_text.items()
        ]
        return AhoCorasick(list(self._by_text)), entries

    def scan(self, text: str) -> list[Hit]:
        """Hits of every alias in already folded `text` that pass `accepts`."""
        automaton, entries = self._automaton
        hits: list[Hit] = []
        size = len(text)
        for key, start, end in automaton.find_matches_as_indexes(text, overlapping=True):
            script, kana, indices = entries[key]
            if script is Script.WORD:
                # Inlined fast path of `boundary_ok` for ASCII neighbours: this runs for every
                # hit, and most hits are Latin names in English text (checked by a test).
                before = text[start - 1] if start else " "
                after = text[end] if end < size else " "
                if before.isascii() and after.isascii():
                    if before.isalnum() or before == "_" or after.isalnum() or after == "_":
                        continue
                elif not boundary_ok(text, start, end, script):
                    continue
            elif not _edges_ok(text, start, end, script, kana):
                continue
            for index in indices:
                hits.append((index, start, end))
        return hits

    def accepts(self, text: str, start: int, end: int) -> bool:
        """Whether a substring hit of an alias at `text[start:end]` counts as that alias.

        `textnorm.boundary_ok`, plus one rule for names in katakana (which `boundary_ok`
        matches anywhere, like Han): they must not be part of a longer katakana word, so
        `タイ` (Thailand) is not found in `タイミング` nor `マリ` (Mali) in `マリン`.
        A scanner other than `scan` must apply this before `resolve`.
        """
        alias_text = text[start:end]
        return _edges_ok(text, start, end, term_script(alias_text), _has_kana_edge(alias_text))

    def tag(self, title: str, summary: str) -> tuple[str, ...]:
        """The sorted region codes an item is about."""
        raw = f"{title}\n{summary}"
        return self.resolve(self.scan(fold(raw)), raw=raw)

    def resolve(self, hits: Iterable[Hit], *, raw: str = "") -> tuple[str, ...]:
        """Turn boundary-checked alias hits into sorted region codes (rules in module doc).

        Hits of several fields can be resolved together when their positions do not overlap
        (fold `title + "\\n" + summary`, or offset the second field). `raw` is the unfolded
        text, consulted only for case-sensitive aliases: without it they never tag.
        """
        tagged: set[str] = set()
        for index, _, _ in self.winners(hits, raw=raw):
            tagged.update(self._plan[index][1])  # type: ignore[index]
        return tuple(sorted(tagged))

    def winners(self, hits: Iterable[Hit], *, raw: str = "", seen: Iterable[str] = ()) -> list[Hit]:
        """The hits that tag, in text order: longest match, then conditions (module doc).

        `seen` are codes known to be tagged in the text by something else: the entity tagger
        passes the regions, so that an entity's `@CODE` context can name them.
        """
        present: set[str] = set()
        spans: list[Hit] = []
        for hit in hits:
            if self._plan[hit[0]] is None:
                present.add(self.aliases[hit[0]].text)
            else:
                spans.append(hit)
        tagged = set(seen)
        out: list[Hit] = []
        pending: list[Hit] = []
        for hit in _longest(spans):
            conditional, codes = self._plan[hit[0]]  # type: ignore[misc]
            if conditional:
                pending.append(hit)
            elif codes:  # a blocker wins its place and tags nothing
                tagged.update(codes)
                out.append(hit)
        if pending:
            checks = _Checks(present, tagged, raw, self._exact)
            out += [hit for hit in pending if checks.holds(self.aliases[hit[0]])]
        return sorted(out, key=lambda h: (h[1], h[2]))

    def ancestry(self, code: str) -> tuple[str, ...]:
        """`code` with its parents and groups (unknown codes stand alone)."""
        return self._ancestry(code.upper()) or (code.upper(),)


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fa" or ch == "\u30fc"  # letters and the long-vowel mark


def _has_kana_edge(text: str) -> bool:
    return bool(text) and (_is_katakana(text[0]) or _is_katakana(text[-1]))


def _inside_katakana_word(text: str, start: int, end: int) -> bool:
    hit = text[start:end]
    before = start > 0 and _is_katakana(hit[0]) and _is_katakana(text[start - 1])
    return before or (end < len(text) and _is_katakana(hit[-1]) and _is_katakana(text[end]))


# What before `日` makes it the day of a date, not Japan: a digit or a Han numeral (`13日朝`,
# the morning of the 13th; `12月3日美国`, on 3 December the US) or the start of a day word
# (`同日米国務省`, the same day the State Department; `今日美国`, today the US).
_DAY_BEFORE = frozenset("0123456789〇一二三四五六七八九十百两今昨明同当當翌毎每连連次")


def _day_of_a_date(text: str, start: int, end: int) -> bool:
    """Whether a Han hit at `text[start:end]` begins with the `日` of a date: `日朝` (Japan and
    North Korea) in `13日朝` is a morning. `日本` keeps its name (`今日本` is also "now Japan")."""
    return (
        text[start] == "日"
        and start > 0
        and text[start - 1] in _DAY_BEFORE
        and end - start > 1
        and text[start + 1] != "本"
    )


def _edges_ok(text: str, start: int, end: int, script: Script, kana: bool) -> bool:
    if kana and _inside_katakana_word(text, start, end):
        return False
    if script is Script.HAN:
        return not _day_of_a_date(text, start, end)
    return boundary_ok(text, start, end, script)


def _plan(alias: Alias, closure: dict[str, tuple[str, ...]]) -> tuple[bool, frozenset[str]] | None:
    if alias.context:
        return None
    codes = frozenset(c for code in alias.codes for c in closure.get(code, (code,)))
    return alias.conditional, codes


@dataclass(slots=True)
class _Checks:
    """The conditions of ambiguous aliases, evaluated against one text."""

    present: set[str]  # context words seen
    tagged: set[str]  # codes tagged unconditionally
    raw: str  # the unfolded text, for case-sensitive aliases
    patterns: dict[str, re.Pattern[str]]
    written: dict[str, bool] = field(default_factory=dict)

    def holds(self, alias: Alias) -> bool:
        if alias.exact and not self.is_written(alias.exact):
            return False
        if any(self.seen(c) for c in alias.unless):
            return False
        return not alias.requires or any(self.seen(c) for c in alias.requires)

    def seen(self, condition: str) -> bool:
        if condition.startswith("@"):
            return condition[1:] in self.tagged
        return condition in self.present

    def is_written(self, form: str) -> bool:
        if form not in self.written:
            if not self.written:
                self.raw = unicodedata.normalize("NFKC", self.raw)
            # The substring test is C-fast and usually false ("us" is common, "US" is not).
            found = form in self.raw and self.patterns[form].search(self.raw) is not None
            self.written[form] = found
        return self.written[form]


def _longest(spans: list[Hit]) -> list[Hit]:
    """The hits that survive longest-match.

    Hits are cut into clusters of overlapping spans; within a cluster the longest wins, then
    the leftmost, and hits with exactly a winner's span win too (several senses of one name).
    """
    spans.sort(key=lambda h: (h[1], -h[2]))
    out: list[Hit] = []
    cluster: list[Hit] = []
    cluster_end = -1
    for hit in spans:
        if hit[1] >= cluster_end and cluster:
            out.extend(_cluster_winners(cluster))
            cluster = []
        cluster.append(hit)
        cluster_end = max(cluster_end, hit[2]) if len(cluster) > 1 else hit[2]
    out.extend(_cluster_winners(cluster))
    return out


def _cluster_winners(cluster: list[Hit]) -> list[Hit]:
    if len(cluster) == 1:
        return cluster
    taken: list[tuple[int, int]] = []
    out: list[Hit] = []
    for hit in sorted(cluster, key=lambda h: (h[1] - h[2], h[1])):
        _, start, end = hit
        if (start, end) in taken or not any(s < end and start < e for s, e in taken):
            taken.append((start, end))
            out.append(hit)
    return out


def _exact_pattern(form: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(form)}(?!\w)")


def load_gazetteer(overrides: Path | None = None) -> Gazetteer:
    """The built-in gazetteer, with `overrides` (a `rules/regions.yaml`) applied if given.

    Raises ConfigError naming the file, line and column when the overrides are invalid.
    """
    return _builtin() if overrides is None else _gazetteer(load_layers(overrides))


@cache
def _builtin() -> Gazetteer:
    return _gazetteer(load_layers())


def _gazetteer(layers: Layers) -> Gazetteer:
    """Index the layers' specs as aliases; every context word becomes an alias of its own."""
    aliases: list[Alias] = []
    context: dict[str, None] = {}
    for text, specs in layers.specs.items():
        script = term_script(text)
        for s in specs:
            aliases.append(Alias(text, s.codes, script, s.lang, s.requires, s.unless, s.exact))
            context.update(dict.fromkeys((*s.requires, *s.unless)))
    for text, codes, lang in press_compounds(layers.specs):
        aliases.append(Alias(text, codes, term_script(text), lang))
    for word in context:
        if not word.startswith("@"):
            aliases.append(Alias(word, (), term_script(word), "", context=True))
    return Gazetteer(dict(layers.regions), tuple(aliases))

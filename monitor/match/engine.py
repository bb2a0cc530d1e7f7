"""The matching engine: every rule and gazetteer alias against an item in one scan.

`Matcher.compile(rules, aliases)` puts every term, phrase word and alias in one of two
Aho-Corasick automata (ahocorasick_rs), by script:

- Latin/Cyrillic/Greek keys (nearly all) become the patterns ` word ` (a whole word) or
  ` word` (`drill*`, a word start), searched in the words of the item joined by spaces
  (`textnorm.word_bytes`, made at C speed). Every hit is then a real hit: the scan is one call
  that returns pattern numbers, with no boundary test nor position per hit in Python.
- Keys with Han, kana or Hangul, which match as substrings, go in a second automaton over the
  folded text, with `textnorm.boundary_ok`'s test per hit; it runs only on a field with such
  characters.

A scan yields the set of *pids* (pattern ids) present. A phrase (or a term with punctuation
inside, like `cross-strait`) needs the pids of all its words, then its regex checks the order.
Positions (for phrases, NEAR, `title:`/`summary:`) are computed only when a rule asks, and a
match's hits (its explanation) only when they are read.

Each rule is indexed under its two rarest *clauses*: sets of pids one of which must be present
for it to hold (`a AND (b OR c)` has the clauses {a} and {b, c}). Only rules whose clauses both
have a hit are evaluated, so a common word wakes few rules even among thousands. Queries compile
once into closures (an AND or OR of plain words into one set test on the pids). A `Matcher` is
immutable: a reload compiles a new one and swaps it in.

Here: the automata, the clause index and the scan. The rule compiler is in `compiler.py`,
the scan state in `scan.py`, `Match` and `Rule` in `rule.py`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import reduce
from operator import or_

import ahocorasick_rs

from monitor.match import textnorm as tn
from monitor.match.compiler import _alias_keys, _Builder, _compile_rule, _Compiled, _first
from monitor.match.rule import Match, Rule
from monitor.match.scan import Scan, _Ctx, _Matchable
from monitor.models import Feed, Item


def _prepare(text: str) -> tuple[str | None, bytes, bool]:
    """Folded `text` (None when it is plain: folded only if a rule needs positions), its words
    for the word automaton, and whether it has Han, kana or Hangul."""
    words = tn.plain_word_bytes(text)
    if words is not None:  # most English text, at C speed
        return None, words, False
    folded = tn.fold_quick(text)
    return folded, tn.word_bytes(folded), tn.has_cjk(folded)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling 10,000 rules makes about a million small objects (closures, tuples, sets),
    and the cycle collector would walk the growing heap again and again: half of the time.
    None of them is garbage to free at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _masks(clauses: Iterable[list[frozenset[int]]]) -> tuple[dict[int, int], list[int]]:
    """Per pid, a bit mask of the rules it wakes: bit 2r if the pid is in rule r's first clause,
    bit 2r+1 if in its second (both for a rule of one clause); and the rules with no clause."""
    masks: dict[int, int] = {}
    always = []
    for rule, pid_sets in enumerate(clauses):
        if not pid_sets:
            always.append(rule)
        for bit, pids in ((1 << 2 * rule, pid_sets[:1]), (2 << 2 * rule, pid_sets[-1:])):
            for pid in (p for group in pids for p in group):
                masks[pid] = masks.get(pid, 0) | bit
    return masks, always


def _rules_woken(mask: int, even: int) -> list[int]:
    """The rules with both bits set in `mask` (see `_masks`), ascending (`even`: bits 2r)."""
    both = mask & (mask >> 1) & even
    out = []
    while both:
        low = both & -both
        out.append(low.bit_length() // 2)
        both ^= low
    return out


class Matcher:
    """All rules compiled into one index. Build with `Matcher.compile`; immutable after."""

    def __init__(
        self,
        rules: list[_Compiled],
        builder: _Builder,
        clauses: list[list[frozenset[int]]],
        aliases: dict[int, list[str]],
    ) -> None:
        self._rules, self._matchables, self._aliases = rules, builder.matchables, aliases
        patterns = sorted(builder.patterns, key=builder.patterns.__getitem__)
        self._masks, always = _masks(clauses)
        self._even = (4 ** len(rules) - 1) // 3  # 0b0101...01: one bit per rule
        self._always = tuple(always)
        self._posted = frozenset(self._masks)  # `set & dict` would walk the whole dict
        self._words = ahocorasick_rs.BytesAhoCorasick([p.encode() for p in patterns])
        keys = sorted(builder.cjk)
        self._cjk_keys = [(tn.term_script(k), tuple(builder.cjk[k])) for k in keys]
        self._cjk = ahocorasick_rs.AhoCorasick(keys) if keys else None
        # A key that can hit in text without Han or Hangul makes that automaton run on all.
        self._cjk_always = any(not tn.has_cjk(k) for k in keys)
        self.rules: dict[str, Rule] = {c.rule.id: c.rule for c in rules}

    @property
    def matchables(self) -> list[_Matchable]:
        """Every term and phrase of the rules, by matchable id (`scan._Ctx` reads them)."""
        return self._matchables

    @classmethod
    def compile(cls, rules: Iterable[Rule], aliases: Iterable[str] = ()) -> Matcher:
        """Compile `rules` (and extra `aliases`, e.g. the gazetteer's, reported by `scan`)."""
        with _gc_paused():
            builder = _Builder()
            by_pid = _alias_keys(builder, aliases)
            compiled, clauses = [], []
            for rule in rules:
                rule_compiled, rule_clauses = _compile_rule(rule, builder)
                compiled.append(rule_compiled)
                clauses.append(rule_clauses)
            builder.word_pid("\n", False)  # never hits: an automaton needs one pattern
            return cls(compiled, builder, clauses, by_pid)

    def scan(self, title: str, summary: str) -> Scan:
        """Fold both fields and find every term and alias in them: one automaton call for
        the words of both, one more per field with Han, kana or Hangul."""
        (title_folded, title_words, title_cjk), (summary_folded, summary_words, summary_cjk) = (
            _prepare(title),
            _prepare(summary),
        )
        words = b" %s %s " % (title_words, summary_words)
        found = set(map(_first, self._words.find_matches_as_indexes(words, overlapping=True)))
        fields = ((title, title_folded), (summary, summary_folded))
        scan = Scan(fields, found, self._aliases, words)
        if self._cjk is not None:
            for index, cjk in enumerate((title_cjk, summary_cjk)):
                if cjk or self._cjk_always:
                    self._scan_cjk(scan, index)
        return scan

    def _scan_cjk(self, scan: Scan, index: int) -> None:
        text = scan.texts[index]
        size = len(text)
        assert self._cjk is not None
        for key, start, end in self._cjk.find_matches_as_indexes(text, overlapping=True):
            script, entries = self._cjk_keys[key]
            # The boundary test of textnorm.boundary_ok, inlined: this runs for every hit.
            whole = True
            if script is tn.Script.WORD:
                if start and tn.is_word_char(text[start - 1]):
                    continue
                whole = end == size or not tn.is_word_char(text[end])
            elif script is tn.Script.HANGUL and start and tn.script_of(text[start - 1]) is script:
                continue
            for pid, mid, open_end in entries:
                if not (whole or open_end):
                    continue
                if mid < 0:
                    scan.cjk_aliases.append((text[start:end], index, start, end))
                    continue
                scan.found.add(pid)
                if self._matchables[mid].cjk:
                    scan.cjk_spans.setdefault(mid, []).append((index, start, end))

    def candidates(self, scan: Scan) -> list[int]:
        """The rules whose two clauses have a hit in `scan`, and those with none, in order."""
        hit = scan.found & self._posted
        if not hit:
            return list(self._always)
        # ORs of ints run in C whatever the number of rules, where set unions cost per rule.
        woken = _rules_woken(reduce(or_, map(self._masks.__getitem__, hit)), self._even)
        return sorted(woken + list(self._always)) if self._always else woken

    def match(self, item: Item, feed: Feed | None = None, scan: Scan | None = None) -> list[Match]:
        """The rules `item` matches, in rule order. `feed` None skips the rules' feed scope."""
        scan = scan or self.scan(item.title, item.summary)
        candidates = self.candidates(scan)
        if not candidates:
            return []
        ctx = _Ctx(scan, item, feed, self._matchables)
        matches = []
        for index in candidates:
            rule = self._rules[index]
            if rule.in_scope(feed) and (found := rule.evaluate(ctx)) is not None:
                matches.append(found)
        return matches

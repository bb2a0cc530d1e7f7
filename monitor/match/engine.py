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
Positions (for phrases, NEAR, `title:`/`summary:` and the explanation of a match) are computed
only when a rule asks.

Each rule is indexed under its two rarest *clauses*: sets of pids one of which must be present
for it to hold (`a AND (b OR c)` has the clauses {a} and {b, c}). Only rules whose clauses both
have a hit are evaluated, so a common word wakes few rules even among thousands. Queries compile
once into closures. A `Matcher` is immutable: a reload compiles a new one and swaps it in.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from itertools import product, repeat
from operator import call, itemgetter, or_

import ahocorasick_rs

from monitor.match import query as q
from monitor.match import textnorm as tn
from monitor.match.rules import Rule
from monitor.models import Feed, Item

BOTH = (0, 1)  # field indexes: 0 title, 1 summary
Span = tuple[int, int, int]  # (field, start, end) in the folded field text
Clause = tuple[float, frozenset[int]]  # (expected frequency, pids: one must be present)
_first = itemgetter(0)


@dataclass(frozen=True)
class Hit:
    """One place a rule's term matched: offsets are in the folded text of `field`."""

    term: str  # as the rule wrote it: `drill*`, `"Taiwan Strait"`
    field: q.FieldName
    start: int
    end: int


@dataclass(frozen=True)
class Match:
    """A rule that matched an item, with what it saw so it can explain itself."""

    rule_id: str
    score: float  # 0 when the rule has no score block
    hits: tuple[Hit, ...]

    def explain(self) -> str:
        """One line: the rule, its score and every hit, e.g. `r (score 5): PLA title@0-3`."""
        hits = ", ".join(f"{h.term} {h.field}@{h.start}-{h.end}" for h in self.hits)
        return f"{self.rule_id} (score {self.score:g}): {hits or 'no term hits'}"


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


def _is_word_key(key: str) -> bool:
    """Whether a folded key goes in the word automaton: any hit of it starts a word."""
    return tn.is_word_char(key[0]) and not tn.has_cjk(key)


def _prepare(text: str) -> tuple[str | None, bytes, bool]:
    """Folded `text` (None when it is plain: folded only if a rule needs positions), its words
    for the word automaton, and whether it has Han, kana or Hangul."""
    words = tn.plain_word_bytes(text)
    if words is not None:  # most English text, at C speed
        return None, words, False
    folded = tn.fold_quick(text)
    return folded, tn.word_bytes(folded), tn.has_cjk(folded)


class Scan:
    """What one scan of an item found, before any rule is evaluated."""

    def __init__(self, fields: tuple[tuple[str, str | None], ...], found: set[int],
                 aliases: dict[int, list[str]]) -> None:  # fmt: skip
        self._fields = fields  # (raw, folded or None if plain) for title and summary
        self.found = found  # pids present in either field
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
        for pid in self.found & self._aliases.keys():
            for alias in self._aliases[pid]:
                for f in BOTH:
                    hits += [(alias, f, s, e) for s, e in tn.find_word(self.texts[f], alias)]
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


Pred = Callable[[_Ctx], bool]
SpansFn = Callable[[_Ctx], list[Span]]


def _scope(node: q.Node) -> Pred:
    if isinstance(node, q.Region):
        return lambda c: node.code in c.item.regions or node.code.lower() in c.item.regions
    if isinstance(node, q.FeedScope):
        return lambda c: c.item.feed_id == node.id
    if isinstance(node, q.Tag):
        name = node.name.casefold()
        return lambda c: c.feed is not None and any(t.casefold() == name for t in c.feed.tags)
    assert isinstance(node, q.Lang)
    code = node.code
    return lambda c: (
        (lang := (c.item.lang or "").lower().replace("_", "-")) == code
        or (lang.startswith(code + "-"))
    )


class _Builder:
    """Collects matchables and the patterns that find them while rules compile."""

    def __init__(self) -> None:
        self.matchables: list[_Matchable] = []
        self.ids: dict[tuple[tuple[str, ...], bool], int] = {}
        self.by_node: dict[q.Term | q.Phrase, int] = {}
        self.patterns: dict[str, int] = {}  # word automaton pattern -> pid (its index there)
        # Second automaton: key -> [(pid, matchable or -1 for an alias, may run into letters)].
        self.cjk: dict[str, list[tuple[int, int, bool]]] = {}
        self.cjk_pids = 0  # counting down from -1
        self.frequency: dict[int, float] = {}  # pid -> a guess at how often it is present

    def word_pid(self, word: str, open_end: bool) -> int:
        pid = self.patterns.setdefault(f" {word}" if open_end else f" {word} ", len(self.patterns))
        # Frequent words are short (Zipf); `x*` hits more than `x`.
        self.frequency[pid] = 0.5 ** len(word) * (4 if open_end else 1)
        return pid

    def cjk_pid(self, key: str, mid: int, open_end: bool) -> int:
        self.cjk_pids -= 1
        self.cjk.setdefault(key, []).append((self.cjk_pids, mid, open_end))
        self.frequency[self.cjk_pids] = 0.1 ** len(key)  # a Han character says more
        return self.cjk_pids

    def matchable(self, node: q.Term | q.Phrase) -> int:
        mid = self.by_node.get(node)
        if mid is None:
            mid = self.by_node[node] = self.add(node)
        return mid

    def add(self, node: q.Term | q.Phrase) -> int:
        words = tuple(tn.split_words(tn.fold(node.text)))
        prefix = (
            isinstance(node, q.Term)
            and node.prefix
            and tn.term_script(words[-1][-1]) is tn.Script.WORD
        )
        mid = self.ids.setdefault((words, prefix), len(self.matchables))
        if mid < len(self.matchables):
            return mid
        last = len(words) - 1
        needs = {w: self.word_pid(w, prefix and i == last) for i, w in enumerate(words)
                 if _is_word_key(w)}  # fmt: skip
        anchor = max(words, key=len)  # the longest word signals the phrase
        pid = needs.get(anchor)
        if pid is None:  # the anchor has Han or Hangul: only the last word may be open-ended
            pid = self.cjk_pid(anchor, mid, prefix and anchor == words[-1])
        cjk = anchor not in needs and not words[1:]
        needed = frozenset((*needs.values(), pid))
        self.matchables.append(_Matchable(q.to_string(node), words, prefix, pid, needed, cjk))
        return mid

    def cost(self, node: q.Node) -> int:
        """How dear `node` is to test, so AND and OR try the cheap children first."""
        if isinstance(node, q.Term | q.Phrase):
            return 1 if len(self.matchables[self.matchable(node)].words) == 1 else 2
        if isinstance(node, q.Near):
            return 3
        if isinstance(node, q.And | q.Or):
            return max(self.cost(c) for c in node.children)
        return self.cost(node.child) if isinstance(node, q.Not | q.Field) else 0


class _RuleCompiler:
    """Turns one rule's query tree into closures over `_Ctx`, and finds its clauses."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.positive: dict[int, None] = {}  # matchables outside NOT, reported as hits

    def pred(self, node: q.Node, fields: tuple[int, ...] = BOTH, negated: bool = False) -> Pred:
        if isinstance(node, q.Term | q.Phrase):
            return self.term(self.use(node, negated), fields)
        if isinstance(node, q.And | q.Or):
            parts = [self.pred(c, fields, negated) for c in sorted(node.children, key=self.b.cost)]
            # `map(call, ...)`: the loop runs in C and stops at the first answer.
            if isinstance(node, q.And):
                return lambda c: all(map(call, parts, repeat(c)))
            return lambda c: any(map(call, parts, repeat(c)))
        if isinstance(node, q.Not):
            inner = self.pred(node.child, fields, not negated)
            return lambda c: not inner(c)
        if isinstance(node, q.Field):
            return self.pred(node.child, (q.FIELDS.index(node.name),), negated)
        if isinstance(node, q.Near):
            spans = self.spans(node, fields, negated)
            return lambda c: bool(spans(c))
        return _scope(node)

    def term(self, mid: int, fields: tuple[int, ...]) -> Pred:
        matchable = self.b.matchables[mid]
        pid, needs = matchable.pid, matchable.needs
        if fields is BOTH and len(matchable.words) == 1:
            return lambda c: pid in c.found
        # A phrase, or a field: its words first, then the positions.
        return lambda c: c.found.issuperset(needs) and bool(c.spans(mid, fields))

    def spans(self, node: q.Node, fields: tuple[int, ...], negated: bool) -> SpansFn:
        if isinstance(node, q.Term | q.Phrase):
            mid = self.use(node, negated)
            return lambda c: c.spans(mid, fields)
        if isinstance(node, q.Field):
            return self.spans(node.child, (q.FIELDS.index(node.name),), negated)
        if isinstance(node, q.Or):
            parts = [self.spans(c, fields, negated) for c in node.children]
            return lambda c: [s for p in parts for s in p(c)]
        assert isinstance(node, q.Near), "the parser allows only positional nodes in NEAR"
        left, right = (
            self.spans(node.left, fields, negated),
            self.spans(node.right, fields, negated),
        )
        n = node.n
        return lambda c: (lambda a: c.near(n, a, right(c)) if a else [])(left(c))

    def use(self, node: q.Term | q.Phrase, negated: bool) -> int:
        mid = self.b.matchable(node)
        if not negated:
            self.positive[mid] = None
        return mid

    def clauses(self, node: q.Node) -> list[Clause]:
        """Clauses that all hold whenever `node` does (none for NOT and scopes)."""
        if isinstance(node, q.Term | q.Phrase):
            needs = self.b.matchables[self.b.matchable(node)].needs
            return [(self.b.frequency[pid], frozenset((pid,))) for pid in needs]
        if isinstance(node, q.Field):
            return self.clauses(node.child)
        if isinstance(node, q.Near):
            return self.clauses(node.left) + self.clauses(node.right)
        if isinstance(node, q.And):
            return [clause for child in node.children for clause in self.clauses(child)]
        if isinstance(node, q.Or):
            # One child holds, so one clause of each: a union of one clause per child holds.
            # `(a AND b) OR c` gives {a, c} and {b, c}; the two rarest of each child are used.
            width = 2 if len(node.children) <= 3 else 1
            options = [sorted(self.clauses(c), key=_first)[:width] for c in node.children]
            if not all(options):
                return []
            return [
                (sum(f for f, _ in combo), frozenset().union(*(pids for _, pids in combo)))
                for combo in product(*options)
            ]
        return []


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    query: Pred | None
    score_terms: tuple[tuple[int, float], ...]
    positive: tuple[int, ...]
    feed_ids: frozenset[str]
    feed_tags: frozenset[str]

    def in_scope(self, feed: Feed | None) -> bool:
        # Without a feed (a dry run on bare text) the rule's feed scope cannot be judged: skip it.
        if feed is None or not (self.feed_ids or self.feed_tags):
            return True
        return feed.id in self.feed_ids or any(t.casefold() in self.feed_tags for t in feed.tags)

    def evaluate(self, ctx: _Ctx) -> Match | None:
        if self.query is not None and not self.query(ctx):
            return None
        score = sum(w for mid, w in self.score_terms if ctx.has(mid))
        if self.rule.score is not None and score < self.rule.score.threshold:
            return None
        spans = sorted((span, mid) for mid in self.positive for span in ctx.spans(mid))
        fields = q.FIELDS
        hits = tuple(Hit(ctx.matchables[mid].label, fields[f], s, e) for (f, s, e), mid in spans)
        return Match(self.rule.id, score, hits)


def _compile_rule(rule: Rule, builder: _Builder) -> tuple[_Compiled, list[frozenset[int]]]:
    """The compiled rule and up to two clauses to index it by (none: try it on every item)."""
    comp = _RuleCompiler(builder)
    query = comp.pred(rule.tree) if rule.tree is not None else None
    score_terms: list[tuple[int, float]] = []
    clauses = comp.clauses(rule.tree) if rule.tree is not None else []
    if rule.score is not None:
        score_terms = [(comp.use(term, False), weight) for term, weight in rule.score.terms]
        if rule.score.threshold > 0:  # only a term of positive weight can reach it
            pids = [builder.matchables[m].pid for m, weight in score_terms if weight > 0]
            clauses.append((sum(builder.frequency[p] for p in pids), frozenset(pids)))
    tags = frozenset(f[4:].casefold() for f in rule.feeds if f.startswith("tag:"))
    ids = frozenset(f for f in rule.feeds if not f.startswith("tag:"))
    compiled = _Compiled(rule, query, tuple(score_terms), tuple(comp.positive), ids, tags)
    return compiled, _pick(clauses)


def _pick(clauses: list[Clause]) -> list[frozenset[int]]:
    """The rarest clause, and the rarest of those sharing no pid with it (else the next): two
    clauses on the same word would filter no better than one."""
    ranked = sorted(set(clauses), key=_first)
    if len(ranked) < 2:
        return [pids for _, pids in ranked]
    first = ranked[0][1]
    disjoint = [pids for _, pids in ranked[1:] if first.isdisjoint(pids)]
    return [first, disjoint[0] if disjoint else ranked[1][1]]


def _alias_keys(builder: _Builder, aliases: Iterable[str]) -> dict[int, list[str]]:
    """Add the aliases' keys: a word alias by its longest word (`the` of `The Gambia` would hit
    in every item; the whole alias is checked when `Scan.alias_hits` is read); any other in the
    second automaton. Returns pid -> aliases."""
    by_pid: dict[int, list[str]] = {}
    for alias in sorted({a for a in map(tn.fold, aliases) if a.strip()}):
        if _is_word_key(alias):
            longest = max(tn.word_bytes(alias).split(), key=len).decode()
            by_pid.setdefault(builder.word_pid(longest, False), []).append(alias)
        else:
            builder.cjk.setdefault(alias, []).append((0, -1, False))
    return by_pid


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
        scan = Scan(((title, title_folded), (summary, summary_folded)), found, self._aliases)
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

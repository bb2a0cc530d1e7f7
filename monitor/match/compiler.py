"""Rules compiled for the `Matcher`: every term and phrase becomes a matchable found by
automaton patterns (`_Builder`), each query tree closures over `_Ctx` (`_RuleCompiler`), and
each rule the two rarest clauses it is indexed under (`_pick`).

Apart from `engine.py`, which builds the automata and the index from what this collects, and
scans items with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from itertools import product, repeat
from operator import call, itemgetter

from monitor.match import nodes as q
from monitor.match import textnorm as tn
from monitor.match.rule import Hit, Match, Rule
from monitor.match.scan import BOTH, Span, _Ctx, _Matchable
from monitor.models import Feed

Clause = tuple[float, frozenset[int]]  # (expected frequency, pids: one must be present)
_first = itemgetter(0)


def _is_word_key(key: str) -> bool:
    """Whether a folded key goes in the word automaton: any hit of it starts a word."""
    return tn.is_word_char(key[0]) and not tn.has_cjk(key)


Pred = Callable[[_Ctx], bool]
SpansFn = Callable[[_Ctx], list[Span]]


def _scope(node: q.Node) -> Pred:
    if isinstance(node, q.Region):
        return lambda c: node.code in c.item.regions or node.code.lower() in c.item.regions
    if isinstance(node, q.EntityScope):
        if node.kind:
            return lambda c: any(e.kind == node.kind for e in c.item.entities)
        return lambda c: any(e.id == node.id for e in c.item.entities)
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
            return self.group(node, fields, negated)
        if isinstance(node, q.Not):
            inner = self.pred(node.child, fields, not negated)
            return lambda c: not inner(c)
        if isinstance(node, q.Field):
            return self.pred(node.child, (q.FIELDS.index(node.name),), negated)
        if isinstance(node, q.Near):
            spans = self.spans(node, fields, negated)
            return lambda c: bool(spans(c))
        return _scope(node)

    def group(self, node: q.And | q.Or, fields: tuple[int, ...], negated: bool) -> Pred:
        """AND / OR: its one-word terms become one set test on the scan's pids (`a AND b`:
        both present; `a OR b`: one present), tried first; the other children follow,
        cheapest first. `map(call, ...)` runs the loop in C and stops at the first answer."""
        keyed = [(c, self.word(c, fields, negated)) for c in sorted(node.children, key=self.b.cost)]
        words = frozenset(pid for _, pid in keyed if pid is not None)
        parts = [self.pred(c, fields, negated) for c, pid in keyed if pid is None]
        if isinstance(node, q.And):
            if not parts:
                return lambda c: c.found.issuperset(words)
            if not words:
                return lambda c: all(map(call, parts, repeat(c)))
            return lambda c: c.found.issuperset(words) and all(map(call, parts, repeat(c)))
        if not parts:
            return lambda c: not c.found.isdisjoint(words)
        if not words:
            return lambda c: any(map(call, parts, repeat(c)))
        return lambda c: not c.found.isdisjoint(words) or any(map(call, parts, repeat(c)))

    def word(self, node: q.Node, fields: tuple[int, ...], negated: bool) -> int | None:
        """The pid of a one-word term on both fields (present exactly when its pid is found),
        else None."""
        if fields is not BOTH or not isinstance(node, q.Term | q.Phrase):
            return None
        matchable = self.b.matchables[self.use(node, negated)]
        return matchable.pid if len(matchable.words) == 1 else None

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
    # The pid signalling each positive matchable -> its places in `positive`: a match's terms
    # and hits are looked for among the pids the scan found, not among every term of the rule
    # (a default rule has ~50, in four languages; a match has one to three).
    signals: dict[int, tuple[int, ...]]
    signal_pids: frozenset[int]

    def in_scope(self, feed: Feed | None) -> bool:
        # Without a feed (a dry run on bare text) the rule's feed scope cannot be judged: skip it.
        if feed is None or not (self.feed_ids or self.feed_tags):
            return True
        return feed.id in self.feed_ids or any(t.casefold() in self.feed_tags for t in feed.tags)

    def evaluate(self, ctx: _Ctx) -> Match | None:
        if self.query is not None and not self.query(ctx):
            return None
        if self.rule.score is None:  # most rules: no score to add up
            return Match(self.rule.id, 0, partial(self.hits, ctx), partial(self.terms, ctx))
        score = sum(w for mid, w in self.score_terms if ctx.has(mid))
        if score < self.rule.score.threshold:
            return None
        # The positions only when someone looks: most matches are stored and never shown.
        return Match(self.rule.id, score, partial(self.hits, ctx), partial(self.terms, ctx))

    def _signalled(self, ctx: _Ctx) -> list[int]:
        """The positive matchables whose signal the scan found, in the rule's order: the
        only ones that can have hit."""
        found = ctx.found & self.signal_pids  # the set ops run in C
        if len(found) == 1:
            places: Iterable[int] = self.signals[next(iter(found))]
        else:
            places = sorted(p for pid in found for p in self.signals[pid])
        return [self.positive[p] for p in places]

    def hits(self, ctx: _Ctx) -> tuple[Hit, ...]:
        """Every place a term outside NOT matched, in text order."""
        spans = sorted((span, mid) for mid in self._signalled(ctx) for span in ctx.spans(mid))
        fields = q.FIELDS
        return tuple(Hit(ctx.matchables[mid].label, fields[f], s, e) for (f, s, e), mid in spans)

    def terms(self, ctx: _Ctx) -> tuple[str, ...]:
        """The terms outside NOT that hit, in the rule's order: what the store keeps (the
        hits' terms, told without working out a position for a plain word: `_Ctx.has`)."""
        return tuple(ctx.matchables[mid].label for mid in self._signalled(ctx) if ctx.has(mid))


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
    positive = tuple(comp.positive)
    signals: dict[int, tuple[int, ...]] = {}
    for place, mid in enumerate(positive):
        pid = builder.matchables[mid].pid
        signals[pid] = (*signals.get(pid, ()), place)
    compiled = _Compiled(
        rule, query, tuple(score_terms), positive, ids, tags, signals, frozenset(signals)
    )
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


# Words that hit in nearly every English item: never an alias's key when it has another word
# as long (`the Fed` is keyed by `fed`, `Can Tho` by `tho`).
_COMMON = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "for",
        "on",
        "with",
        "as",
        "at",
        "by",
        "from",
        "an",
        "or",
        "new",
        "can",
        "who",
        "back",
        "not",
        "all",
        "one",
    ]
)


def _key_word(word: bytes) -> tuple[int, int]:
    return len(word), word.decode() not in _COMMON


def _alias_keys(builder: _Builder, aliases: Iterable[str]) -> dict[int, list[str]]:
    """Add the aliases' keys: a word alias by its longest word (`the` of `The Gambia` would hit
    in every item; the whole alias is checked when `Scan.alias_hits` is read), the less common
    of two as long; any other in the second automaton. Returns pid -> aliases.

    A word alias may start with punctuation (`'s-hertogenbosch`): each of its words is still a
    whole word of any text it is in. In the second automaton such a key (no Han, no Hangul)
    would make that automaton run over every item."""
    by_pid: dict[int, list[str]] = {}
    for alias in sorted({a for a in map(tn.fold, aliases) if a.strip()}):
        words = tn.word_bytes(alias).split() if not tn.has_cjk(alias) else []
        if words:
            longest = max(words, key=_key_word).decode()
            by_pid.setdefault(builder.word_pid(longest, False), []).append(alias)
        else:
            builder.cjk.setdefault(alias, []).append((0, -1, False))
    return by_pid

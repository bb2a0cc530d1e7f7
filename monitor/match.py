"""The matching engine: every rule against an item in one automaton scan per field.

`Matcher.compile(rules)` folds every term, phrase word and gazetteer alias into ONE
Aho-Corasick automaton (ahocorasick_rs: it returns all overlapping hits of a text in one call,
about twice as fast here as iterating pyahocorasick's). `match(item)` folds title and
summary, scans each once, keeps the substring hits that pass the script's boundary test
(`textnorm.boundary_ok`), and evaluates only the rules that got a hit, plus the few whose
query needs no term at all (`region:TW` alone). So the cost per item grows with the hits,
not with the number of rules.

A phrase (or a term with punctuation inside, like `cross-strait`) enters the automaton by its
longest word only; when that word hits, the phrase's own regex checks the rest, and gives the
span. NEAR measures in tokens (`textnorm.token_starts`), computed only when a NEAR is reached.

A `Matcher` is immutable: a reload compiles a new one and swaps the reference.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick_rs

from monitor.models import Feed, Item
from monitor.query import (
    FIELDS,
    And,
    FeedScope,
    Field,
    FieldName,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Region,
    Tag,
    Term,
    to_string,
)
from monitor.rules import Rule
from monitor.textnorm import Script, find_phrase, fold, script_of, split_words
from monitor.textnorm import term_script as _script
from monitor.textnorm import token_starts as _token_starts

BOTH = (0, 1)  # field indexes: 0 title, 1 summary
Span = tuple[int, int, int]  # (field, start, end) in the folded field text


@dataclass(frozen=True)
class Hit:
    """One place a rule's term matched: offsets are in the folded text of `field`."""

    term: str  # as the rule wrote it: `drill*`, `"Taiwan Strait"`
    field: FieldName
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
    """A term or phrase, compiled: one word is looked up directly, more go through a regex."""

    label: str
    words: tuple[str, ...]
    prefix: bool

    def find(self, text: str) -> list[tuple[int, int]]:
        return find_phrase(text, self.words, prefix=self.prefix)


@dataclass
class Scan:
    """What one scan of an item found, before any rule is evaluated."""

    texts: tuple[str, str]  # folded title, summary
    hits: dict[int, list[Span]] = field(default_factory=dict)  # word matchable -> spans
    anchors: set[int] = field(default_factory=set)  # phrases whose longest word hit
    alias_hits: list[tuple[str, int, int, int]] = field(default_factory=list)  # folded alias


class _Ctx:
    """Evaluation state for one item: the scan plus caches filled only when needed."""

    __slots__ = ("feed", "item", "matchables", "phrase_cache", "scan", "tokens")

    def __init__(
        self, scan: Scan, item: Item, feed: Feed | None, matchables: list[_Matchable]
    ) -> None:
        self.scan, self.item, self.feed, self.matchables = scan, item, feed, matchables
        self.phrase_cache: dict[int, list[Span]] = {}
        self.tokens: list[list[int] | None] = [None, None]

    def spans(self, mid: int, fields: tuple[int, ...] = BOTH) -> list[Span]:
        if mid in self.scan.hits:
            found = self.scan.hits[mid]
        elif mid in self.scan.anchors:
            found = self.phrase_spans(mid)
        else:
            return []
        return found if fields is BOTH else [s for s in found if s[0] in fields]

    def phrase_spans(self, mid: int) -> list[Span]:
        if mid not in self.phrase_cache:
            phrase = self.matchables[mid]
            self.phrase_cache[mid] = [
                (f, s, e) for f in BOTH for s, e in phrase.find(self.scan.texts[f])
            ]
        return self.phrase_cache[mid]

    def token(self, field_index: int, pos: int) -> int:
        starts = self.tokens[field_index]
        if starts is None:
            starts = self.tokens[field_index] = _token_starts(self.scan.texts[field_index])
        return bisect_right(starts, pos) - 1


Pred = Callable[[_Ctx], bool]
SpansFn = Callable[[_Ctx], list[Span]]
EMPTY: Sequence[tuple[int, bool]] = ()
# Per automaton key: its script, the word matchables it is (with their prefix flag), the
# phrases it anchors, and whether it is a gazetteer alias.
_Key = tuple[Script, tuple[tuple[int, bool], ...], tuple[tuple[int, bool], ...], bool]


def _near(ctx: _Ctx, n: int, left: list[Span], right: list[Span]) -> list[Span]:
    """Spans covering a left and a right span at most `n` tokens apart, in the same field."""
    out = []
    for a in left:
        for b in right:
            if a[0] != b[0]:
                continue
            first, second = (a, b) if a[1] <= b[1] else (b, a)
            if ctx.token(a[0], second[1]) - ctx.token(a[0], first[2] - 1) <= n:
                out.append((a[0], first[1], max(a[2], b[2])))
    return out


def _requires_hit(node: Node) -> bool:
    """Whether `node` can only hold when some term hit (so hits can pick the rule)."""
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, Field):
        return _requires_hit(node.child)
    if isinstance(node, And):
        return any(_requires_hit(c) for c in node.children)
    if isinstance(node, Or):
        return all(_requires_hit(c) for c in node.children)
    return False


def _all(parts: list[Pred]) -> Pred:
    # Plain loops: `all(p(c) for p in parts)` costs a generator per call on the hot path.
    def run(ctx: _Ctx) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(ctx):
                return False
        return True

    return run


def _any(parts: list[Pred]) -> Pred:
    def run(ctx: _Ctx) -> bool:
        for part in parts:  # noqa: SIM110
            if part(ctx):
                return True
        return False

    return run


def _word_char(ch: str) -> bool:
    """`textnorm.is_word_char`, with the common case (space, punctuation) decided first."""
    return (ch.isalnum() or ch == "_") and (ch.isascii() or script_of(ch) is Script.WORD)


def _cost(node: Node) -> int:
    if isinstance(node, Term):
        return 1 if len(split_words(node.text)) == 1 else 2
    if isinstance(node, Phrase):
        return 2
    if isinstance(node, Near):
        return 3
    if isinstance(node, And | Or):
        return max(_cost(c) for c in node.children)
    return _cost(node.child) if isinstance(node, Not | Field) else 0


def _lang_ok(lang: str | None, code: str) -> bool:
    if not lang:
        return False
    lang = lang.lower().replace("_", "-")
    return lang == code or lang.startswith(code + "-")


class _Builder:
    """Collects matchables and the automaton keys while rules compile."""

    def __init__(self) -> None:
        self.matchables: list[_Matchable] = []
        self.ids: dict[tuple[tuple[str, ...], bool], int] = {}
        self.words: dict[str, list[tuple[int, bool]]] = {}  # key -> (matchable, prefix)
        self.anchors: dict[str, list[tuple[int, bool]]] = {}  # key -> (phrase, prefix)
        self.aliases: set[str] = set()

    def matchable(self, node: Term | Phrase) -> int:
        words = tuple(split_words(fold(node.text)))
        prefix = isinstance(node, Term) and node.prefix and _script(words[-1][-1]) is Script.WORD
        key = (words, prefix)
        if key not in self.ids:
            self.ids[key] = len(self.matchables)
            self.matchables.append(self.make(node, words, prefix))
        return self.ids[key]

    def make(self, node: Term | Phrase, words: tuple[str, ...], prefix: bool) -> _Matchable:
        mid = len(self.matchables)
        if len(words) == 1:
            self.words.setdefault(words[0], []).append((mid, prefix))
        else:
            anchor = max(words, key=len)
            # The anchor may run into more letters only if it is the prefix at the end.
            tail_ok = prefix and anchor == words[-1]
            self.anchors.setdefault(anchor, []).append((mid, tail_ok))
        return _Matchable(to_string(node), words, prefix)

    def automaton(self) -> tuple[ahocorasick_rs.AhoCorasick, list[_Key]]:
        keys = sorted({*self.words, *self.anchors, *self.aliases})
        entries = [
            (
                _script(k),
                tuple(self.words.get(k, EMPTY)),
                tuple(self.anchors.get(k, EMPTY)),
                k in self.aliases,
            )
            for k in keys
        ]
        return ahocorasick_rs.AhoCorasick(keys), entries


class _RuleCompiler:
    """Turns one rule's query tree into closures over `_Ctx`."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.mids: set[int] = set()  # every matchable of the rule (picks it for evaluation)
        self.positive: list[int] = []  # matchables outside NOT, reported as hits

    def pred(self, node: Node, fields: tuple[int, ...] = BOTH, negated: bool = False) -> Pred:
        if isinstance(node, Term | Phrase):
            mid = self.use(node, negated)
            return (
                (lambda c: bool(c.spans(mid)))
                if fields is BOTH
                else (lambda c: bool(c.spans(mid, fields)))
            )
        if isinstance(node, And | Or):
            # Cheap tests first, so AND and OR stop before the costly ones (phrases, NEAR).
            children = sorted(node.children, key=_cost)
            parts = [self.pred(c, fields, negated) for c in children]
            return _all(parts) if isinstance(node, And) else _any(parts)
        if isinstance(node, Not):
            inner = self.pred(node.child, fields, not negated)
            return lambda c: not inner(c)
        if isinstance(node, Field):
            return self.pred(node.child, (FIELDS.index(node.name),), negated)
        if isinstance(node, Near):
            spans = self.spans(node, fields, negated)
            return lambda c: bool(spans(c))
        return self.scope(node)

    def spans(self, node: Node, fields: tuple[int, ...], negated: bool) -> SpansFn:
        if isinstance(node, Term | Phrase):
            mid = self.use(node, negated)
            return lambda c: c.spans(mid, fields)
        if isinstance(node, Field):
            return self.spans(node.child, (FIELDS.index(node.name),), negated)
        if isinstance(node, Or):
            parts = [self.spans(c, fields, negated) for c in node.children]
            return lambda c: [s for p in parts for s in p(c)]
        assert isinstance(node, Near), "the parser allows only positional nodes in NEAR"
        left, right, n = (
            self.spans(node.left, fields, negated),
            self.spans(node.right, fields, negated),
            node.n,
        )
        return lambda c: (lambda a: _near(c, n, a, right(c)) if a else [])(left(c))

    def use(self, node: Term | Phrase, negated: bool) -> int:
        mid = self.b.matchable(node)
        self.mids.add(mid)
        if not negated and mid not in self.positive:
            self.positive.append(mid)
        return mid

    @staticmethod
    def scope(node: Node) -> Pred:
        if isinstance(node, Region):
            return lambda c: node.code in c.item.regions or node.code.lower() in c.item.regions
        if isinstance(node, FeedScope):
            return lambda c: c.item.feed_id == node.id
        if isinstance(node, Tag):
            name = node.name.casefold()
            return lambda c: c.feed is not None and any(t.casefold() == name for t in c.feed.tags)
        assert isinstance(node, Lang)
        return lambda c: _lang_ok(c.item.lang, node.code)


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
        score = sum(w for mid, w in self.score_terms if ctx.spans(mid))
        if self.rule.score is not None and score < self.rule.score.threshold:
            return None
        spans = sorted((span, mid) for mid in self.positive for span in ctx.spans(mid))
        hits = tuple(Hit(ctx.matchables[mid].label, FIELDS[f], s, e) for (f, s, e), mid in spans)
        return Match(self.rule.id, score, hits)


def _compile_rule(rule: Rule, builder: _Builder) -> tuple[_Compiled, set[int], bool]:
    comp = _RuleCompiler(builder)
    query = comp.pred(rule.tree) if rule.tree is not None else None
    score_terms: list[tuple[int, float]] = []
    if rule.score is not None:
        score_terms = [(comp.use(term, False), weight) for term, weight in rule.score.terms]
    tags = frozenset(f[4:].casefold() for f in rule.feeds if f.startswith("tag:"))
    ids = frozenset(f for f in rule.feeds if not f.startswith("tag:"))
    compiled = _Compiled(rule, query, tuple(score_terms), tuple(comp.positive), ids, tags)
    needs_hit = (rule.tree is not None and _requires_hit(rule.tree)) or (
        rule.score is not None and rule.score.threshold > 0
    )
    return compiled, comp.mids, needs_hit


class Matcher:
    """All rules compiled into one automaton. Build with `Matcher.compile`; immutable after."""

    def __init__(
        self,
        rules: list[_Compiled],
        by_mid: list[tuple[int, ...]],
        always: tuple[int, ...],
        matchables: list[_Matchable],
        automaton: tuple[ahocorasick_rs.AhoCorasick, list[_Key]],
    ) -> None:
        self._rules, self._by_mid, self._always = rules, by_mid, always
        self._matchables = matchables
        self._auto, self._keys = automaton
        self.rules: dict[str, Rule] = {c.rule.id: c.rule for c in rules}

    @classmethod
    def compile(cls, rules: Iterable[Rule], aliases: Iterable[str] = ()) -> Matcher:
        """Compile `rules` (and extra `aliases`, e.g. the gazetteer's, reported by `scan`)."""
        builder = _Builder()
        builder.aliases = {a for a in (fold(x) for x in aliases) if a.strip()}
        compiled: list[_Compiled] = []
        always: list[int] = []
        users: dict[int, list[int]] = {}
        for index, rule in enumerate(rules):
            rule_compiled, mids, needs_hit = _compile_rule(rule, builder)
            compiled.append(rule_compiled)
            for mid in mids:
                users.setdefault(mid, []).append(index)
            if not needs_hit:
                always.append(index)
        by_mid = [tuple(users.get(mid, ())) for mid in range(len(builder.matchables))]
        return cls(compiled, by_mid, tuple(always), builder.matchables, builder.automaton())

    def scan(self, title: str, summary: str) -> Scan:
        """Fold both fields and run the automaton over each once."""
        scan = Scan((fold(title), fold(summary)))
        for index in BOTH:
            if scan.texts[index]:
                self._scan_field(scan, index)
        return scan

    def _scan_field(self, scan: Scan, index: int) -> None:
        text = scan.texts[index]
        size = len(text)
        hits, anchors, keys = scan.hits, scan.anchors, self._keys
        for key, start, end in self._auto.find_matches_as_indexes(text, overlapping=True):
            script, words, anchored, alias = keys[key]
            # The boundary test of textnorm.boundary_ok, inlined: this loop is the hot path.
            whole = True
            if script is Script.WORD:
                if start and _word_char(text[start - 1]):
                    continue
                whole = end == size or not _word_char(text[end])
            elif script is Script.HANGUL and start and script_of(text[start - 1]) is script:
                continue
            for mid, prefix in words:
                if whole or prefix:
                    hits.setdefault(mid, []).append((index, start, end))
            for mid, prefix in anchored:
                if whole or prefix:
                    anchors.add(mid)
            if alias and whole:
                scan.alias_hits.append((text[start:end], index, start, end))

    def match(self, item: Item, feed: Feed | None = None, scan: Scan | None = None) -> list[Match]:
        """The rules `item` matches, in rule order. `feed` None skips the rules' feed scope."""
        scan = scan or self.scan(item.title, item.summary)
        candidates = set(self._always)
        for mid in scan.hits.keys() | scan.anchors:
            candidates.update(self._by_mid[mid])
        ctx = _Ctx(scan, item, feed, self._matchables)
        matches = []
        for index in sorted(candidates):
            rule = self._rules[index]
            if rule.in_scope(feed) and (found := rule.evaluate(ctx)) is not None:
                matches.append(found)
        return matches

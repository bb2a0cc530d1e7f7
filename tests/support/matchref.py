"""A slow, obvious evaluation of rules, and Hypothesis strategies for rules and texts in four
scripts: what `tests/match/test_engine.py` checks the matcher against.

`reference` finds every occurrence of every folded term by brute force and keeps those that
`textnorm.boundary_ok` accepts, phrases by `find_phrase`, NEAR by counting `token_starts`: no
automaton, no index, no clause, no shortcut.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime

from hypothesis import strategies as st

from monitor.match.nodes import (
    FIELDS,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Region,
    Term,
    to_string,
)
from monitor.match.query import QuerySyntaxError, parse_query
from monitor.match.rule import Rule, Score
from monitor.match.textnorm import (
    Script,
    boundary_ok,
    find_phrase,
    fold,
    split_words,
    term_script,
    token_starts,
)
from monitor.models import Item

BOTH = (0, 1)
NOW = datetime(2025, 11, 20, tzinfo=UTC)

VOCAB = [
    "taiwan", "Taiwan's", "taiwanese", "strait", "drill", "drills", "overdrilling", "s", "un",
    "under", "PLA", "pla海軍", "g7", "x_y", "naïve", "Москва", "台湾", "臺灣", "海峡", "北朝鮮",
    "ミサイル", "北韓", "북한", "북한의", "남북한", "한국", "cross-strait", "pla海軍x", "pla海軍xy",
]  # fmt: skip
SEPARATORS = [" ", " ", ", ", "'s ", "’s ", "-", "", "\n", " (", "” ", "—", ". "]
Span3 = tuple[int, int, int]


def _words_of(node: Term | Phrase) -> tuple[tuple[str, ...], bool]:
    words = tuple(split_words(fold(node.text)))
    prefix = isinstance(node, Term) and node.prefix and term_script(words[-1][-1]) is Script.WORD
    return words, prefix


def reference_spans(
    texts: tuple[str, str], node: Term | Phrase, fields: tuple[int, ...]
) -> list[Span3]:
    words, prefix = _words_of(node)
    out = []
    for f in fields:
        text = texts[f]
        if len(words) > 1:
            out += [(f, s, e) for s, e in find_phrase(text, words, prefix=prefix)]
            continue
        word, script = words[0], term_script(words[0])
        for start in range(len(text)):
            end = start + len(word)
            if text.startswith(word, start) and boundary_ok(
                text, start, end, script, prefix=prefix
            ):
                out.append((f, start, end))
    return out


def _reference_positions(
    texts: tuple[str, str], node: Node, fields: tuple[int, ...]
) -> list[Span3]:
    if isinstance(node, Term | Phrase):
        return reference_spans(texts, node, fields)
    if isinstance(node, Field):
        return _reference_positions(texts, node.child, (FIELDS.index(node.name),))
    if isinstance(node, Or):
        return [s for c in node.children for s in _reference_positions(texts, c, fields)]
    assert isinstance(node, Near)
    out = []
    for a in _reference_positions(texts, node.left, fields):
        for b in _reference_positions(texts, node.right, fields):
            if a[0] == b[0]:
                first, second = sorted((a, b), key=lambda s: s[1])
                starts = token_starts(texts[a[0]])
                distance = bisect_right(starts, second[1]) - bisect_right(starts, first[2] - 1)
                if distance <= node.n:
                    out.append((a[0], first[1], max(a[2], b[2])))
    return out


def _reference_holds(texts: tuple[str, str], node: Node, it: Item, fields: tuple[int, ...]) -> bool:
    if isinstance(node, Term | Phrase | Near):
        return bool(_reference_positions(texts, node, fields))
    if isinstance(node, Field):
        return _reference_holds(texts, node.child, it, (FIELDS.index(node.name),))
    if isinstance(node, And | Or):
        results = [_reference_holds(texts, c, it, fields) for c in node.children]
        return all(results) if isinstance(node, And) else any(results)
    if isinstance(node, Not):
        return not _reference_holds(texts, node.child, it, fields)
    assert isinstance(node, Region)
    return node.code in it.regions


def _positive_terms(node: Node, negated: bool = False) -> list[Term | Phrase]:
    if isinstance(node, Term | Phrase):
        return [] if negated else [node]
    if isinstance(node, Not):
        return _positive_terms(node.child, not negated)
    if isinstance(node, Field):
        return _positive_terms(node.child, negated)
    if isinstance(node, Near):
        return _positive_terms(node.left, negated) + _positive_terms(node.right, negated)
    children = node.children if isinstance(node, And | Or) else ()
    return [t for c in children for t in _positive_terms(c, negated)]


def reference(r: Rule, it: Item) -> tuple[float, list[Span3]] | None:
    """The score and hit spans of `r` on `it`, or None if it does not match."""
    texts = (fold(it.title), fold(it.summary))
    if r.tree is not None and not _reference_holds(texts, r.tree, it, BOTH):
        return None
    score_terms = r.score.terms if r.score else ()
    score = sum(w for t, w in score_terms if reference_spans(texts, t, BOTH))
    if r.score is not None and score < r.score.threshold:
        return None
    terms = (_positive_terms(r.tree) if r.tree else []) + [t for t, _ in score_terms]
    distinct = {_words_of(t): t for t in reversed(terms)}.values()
    return score, sorted(s for t in distinct for s in reference_spans(texts, t, BOTH))


def reference_aliases(aliases: list[str], it: Item) -> list[tuple[str, int, int, int]]:
    texts = (fold(it.title), fold(it.summary))
    out = []
    for alias in {fold(a) for a in aliases}:
        for f, text in enumerate(texts):
            for start in range(len(text)):
                end = start + len(alias)
                if text.startswith(alias, start) and boundary_ok(
                    text, start, end, term_script(alias)
                ):
                    out.append((alias, f, start, end))
    return sorted(out, key=lambda h: h[1:])


def _term(draw: st.DrawFn) -> Node:
    word = draw(st.sampled_from(VOCAB))
    kind = draw(st.sampled_from(["term", "term", "prefix", "phrase"]))
    if kind == "phrase":
        return Phrase(f"{word} {draw(st.sampled_from(VOCAB))}")
    return Term(word, prefix=kind == "prefix")


@st.composite
def positional(draw: st.DrawFn, depth: int = 0) -> Node:
    kind = draw(
        st.sampled_from(["leaf", "leaf", "leaf", "or", "near", "field"][: 3 + 3 * (depth < 2)])
    )
    if kind == "leaf":
        return _term(draw)
    if kind == "or":
        return Or((draw(positional(depth + 1)), draw(positional(depth + 1))))
    if kind == "near":
        n = draw(st.integers(1, 4))
        return Near(n, draw(positional(depth + 1)), draw(positional(depth + 1)))
    return Field(draw(st.sampled_from(FIELDS)), _term(draw))


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> Node:
    kind = draw(
        st.sampled_from(["pos", "pos", "and", "or", "not", "region"][: 2 + 4 * (depth < 2)])
    )
    if kind == "pos":
        return draw(positional())
    if kind in ("and", "or"):
        children = tuple(draw(queries(depth + 1)) for _ in range(draw(st.integers(2, 3))))
        return And(children) if kind == "and" else Or(children)
    if kind == "not":
        return And((draw(queries(depth + 1)), Not(draw(queries(depth + 1)))))
    return Region("TW")


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        try:  # the canonical form: what the parser makes of it, or skip what it rejects
            tree = parse_query(to_string(draw(queries())))
        except QuerySyntaxError:
            continue
        scored = draw(st.booleans())
        weights = st.sampled_from([-2.0, 1.0, 2.0, 3.0])
        terms = tuple((_term(draw), draw(weights)) for _ in range(draw(st.integers(1, 3))))
        r_score = Score(draw(st.sampled_from([0.0, 2.0, 3.0])), terms) if scored else None  # type: ignore[arg-type]
        query = (
            to_string(tree) if (tree is not None and not (scored and draw(st.booleans()))) else None
        )
        out.append(Rule(id=f"r{i}", title="t", query=query,
                        tree=parse_query(query) if query else None, score=r_score))  # fmt: skip
    return [r for r in out if r.tree is not None or r.score is not None]


ASCII_VOCAB = [w for w in VOCAB if w.isascii()]
# Half the texts are English only: the fast path for ASCII and curly quotes needs its share.
texts_st = st.sampled_from([VOCAB, ASCII_VOCAB]).flatmap(
    lambda vocab: st.lists(
        st.tuples(st.sampled_from(vocab), st.sampled_from(SEPARATORS)), max_size=12
    )
)

"""Where a query hit a report, as pieces of text the templates mark: `Piece(text, hit)`.

The pages never build markup from feed text: they get the text cut at the hits and the
template wraps the hit pieces in `<mark>` (auto-escaping does the rest). Hits come from the
rule engine, as `rules test` and `items show` get them: their offsets are in the folded text,
which has the length of the original for nearly all news; where it does not (a ligature,
`ß`) the folded text is shown, where the offsets are right.

`search_hits` finds a search's hits in stored items by compiling the query's words as one
throwaway rule: every word or phrase outside a NOT, whatever the operators around it, which
is what the engine reports as a rule's hits too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from monitor.match.engine import Matcher
from monitor.match.nodes import And, Field, Near, Node, Not, Or, Phrase, Term
from monitor.match.rule import Hit, Rule
from monitor.match.textnorm import fold
from monitor.models import Item

ELLIPSIS = "…"


class Piece(NamedTuple):
    text: str
    hit: bool


def shown_text(text: str) -> str:
    """The text the hit offsets index into: the original, unless folding changed its length."""
    folded = fold(text)
    return text if len(folded) == len(text) else folded


def pieces(text: str, spans: Iterable[tuple[int, int]]) -> list[Piece]:
    """`text` cut at the spans (offsets in its folded form); overlapping spans: first wins."""
    source = shown_text(text)
    out: list[Piece] = []
    last = 0
    for start, end in sorted(set(spans)):
        if start < last or end > len(source):
            continue
        if start > last:
            out.append(Piece(source[last:start], False))
        out.append(Piece(source[start:end], True))
        last = end
    if last < len(source):
        out.append(Piece(source[last:], False))
    return out


def field_pieces(text: str, hits: Iterable[Hit], field: str) -> list[Piece]:
    return pieces(text, ((h.start, h.end) for h in hits if h.field == field))


def clipped(parts: Sequence[Piece], width: int) -> list[Piece]:
    """At most about `width` characters, kept around the first hit (a long summary is cut
    so that the reason it was found stays in view)."""
    total = sum(len(p.text) for p in parts)
    if total <= width:
        return list(parts)
    first = 0
    for part in parts:
        if part.hit:
            break
        first += len(part.text)
    else:
        first = 0
    start = max(0, min(first - width // 3, total - width))
    return _window(parts, start, start + width)


def _window(parts: Sequence[Piece], start: int, end: int) -> list[Piece]:
    out: list[Piece] = [Piece(ELLIPSIS, False)] if start > 0 else []
    offset, total = 0, sum(len(p.text) for p in parts)
    for part in parts:
        lo, hi = max(start, offset), min(end, offset + len(part.text))
        if lo < hi:
            out.append(Piece(part.text[lo - offset : hi - offset], part.hit))
        offset += len(part.text)
    if end < total:
        out.append(Piece(ELLIPSIS, False))
    return out


def context(text: str, hit: Hit, width: int = 40) -> list[Piece]:
    """The hit with up to `width` characters on each side (as `items show` prints it)."""
    parts = pieces(text, [(hit.start, hit.end)])
    return _window(parts, max(0, hit.start - width), hit.end + width)


def positive_words(tree: Node) -> list[Node]:
    """The words and phrases of a query tree outside any NOT, each once, in query order."""
    if isinstance(tree, Term | Phrase):
        return [tree]
    if isinstance(tree, Not):
        return []
    if isinstance(tree, Field):
        return positive_words(tree.child)
    if isinstance(tree, Near):
        children: Sequence[Node] = (tree.left, tree.right)
    elif isinstance(tree, And | Or):
        children = tree.children
    else:
        return []  # a scope (region:, feed:...): nothing in the text to mark
    return list(dict.fromkeys(w for child in children for w in positive_words(child)))


class SearchHits:
    """A search's words compiled once, to find their hits in each result."""

    def __init__(self, tree: Node | None) -> None:
        words = positive_words(tree) if tree is not None else []
        self._matcher: Matcher | None = None
        if words:
            query = words[0] if len(words) == 1 else Or(tuple(words))
            self._matcher = Matcher.compile([Rule(id="search", title="search", tree=query)])

    def of(self, item: Item) -> tuple[Hit, ...]:
        if self._matcher is None:
            return ()
        return tuple(h for match in self._matcher.match(item) for h in match.hits)

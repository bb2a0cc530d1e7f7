"""A user's search (`monitor items search`) as FTS5 MATCH expressions, for the store.

A search is written in the alert query language (`match.query`): words ANDed, `"phrases"`,
`prefix*`, `OR`, `NOT`/`-word`, parentheses, `NEAR/n`, `title:`/`summary:`, and the scopes
`region:`, `feed:`, `tag:`, `lang:`. The text part becomes FTS5 syntax here; the scopes are
plain SQL (see `filters`). On PostgreSQL the same tree becomes a tsquery (`pgtext`), split at
the same places: what is None here is None there.

The index holds `textnorm.search_text` of title and summary (see core.py), so each term is put
through the same function and quoted: nothing a user types is ever FTS syntax. FTS5 operators
are built only from the parsed tree, always parenthesised, so their own precedence never
matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import product
from typing import TypeVar

from monitor.errors import MonitorError
from monitor.match.nodes import And, Field, Near, Node, Not, Or, Phrase, Term
from monitor.match.query import QuerySyntaxError, parse_query
from monitor.match.textnorm import Script, search_text, term_script

_HAS_TOKEN = re.compile(r"[^\W_]")  # a letter or digit: what `unicode61` makes tokens of
NOWHERE = '""'  # an empty FTS5 phrase, which matches no row
_MAX_NEAR_GROUPS = 64  # `(a OR b) NEAR/5 (c OR d)` expands to one NEAR group per pair

T = TypeVar("T")


class SearchQueryError(MonitorError):
    """A search that does not parse; one line, naming the column and what to do."""

    def __str__(self) -> str:
        return f"search: {super().__str__()}"


def parse_search(query: str | None) -> Node | None:
    """The query tree of a search; None for a blank one (no text condition at all)."""
    if query is None or not query.strip():
        return None
    try:
        return parse_query(query.replace("\x00", " "))  # FTS5 would stop reading at a NUL
    except QuerySyntaxError as error:
        where = f"column {error.column} of {query.strip()!r}"
        raise SearchQueryError(f"{where}: {error.message}", hint=error.hint) from None


def fts_phrase(text: str, *, prefix: bool = False) -> str:
    """One term or phrase as an FTS5 string: the phrase of its tokens.

    Being a quoted string, nothing in it is FTS syntax. A Hangul term is always a prefix,
    since particles follow the noun (`북한` finds `북한의`). A term with no token at all
    (`_`) becomes the empty phrase, which finds nothing.
    """
    folded = search_text(text.strip())
    if not _HAS_TOKEN.search(folded):
        return NOWHERE
    prefix = prefix or term_script(folded.rstrip()[::-1]) is Script.HANGUL
    return '"' + folded.replace('"', '""') + '"' + ("*" if prefix else "")


def fts_expr(node: Node) -> str | None:
    """The FTS5 expression of a query tree made of text only; None when some part of it
    needs SQL (a scope, or a NOT that stands alone: FTS5's NOT only subtracts)."""
    if isinstance(node, Term):
        return fts_phrase(node.text, prefix=node.prefix)
    if isinstance(node, Phrase):
        return fts_phrase(node.text)
    if isinstance(node, Field):
        inner = fts_expr(node.child)
        return None if inner is None else f"{node.name} : ({inner})"
    if isinstance(node, Or):
        branches = [fts_expr(child) for child in node.children]
        return None if None in branches else "(" + " OR ".join(map(str, branches)) + ")"
    if isinstance(node, And):
        return _and(node)
    return _near(node) if isinstance(node, Near) else None


def _and(node: And) -> str | None:
    kept = [fts_expr(c) for c in node.children if not isinstance(c, Not)]
    taken = [fts_expr(c.child) for c in node.children if isinstance(c, Not)]
    if not kept or None in kept or None in taken:
        return None
    expr = "(" + " AND ".join(map(str, kept)) + ")"
    for negative in taken:
        expr = f"({expr} NOT ({negative}))"
    return expr


def _near(node: Near) -> str | None:
    """NEAR groups, one per pair of alternatives. The rule engine counts the second term's
    own token in the distance (adjacent words are 1 apart), FTS5 only the tokens between."""
    left, right = _alternatives(node.left), _alternatives(node.right)
    if left is None or right is None:
        return None  # a NEAR inside a NEAR: FTS5 groups have no positions to measure from
    if len(left) * len(right) > _MAX_NEAR_GROUPS:
        return None
    groups = []
    for (field_a, a), (field_b, b) in product(left, right):
        if field_a and field_b and field_a != field_b:
            continue  # never near each other: they are in different fields
        group = f"NEAR({a} {b}, {max(node.n - 1, 0)})"
        field = field_a or field_b
        groups.append(f"{field} : {group}" if field else group)
    return "(" + " OR ".join(groups) + ")" if groups else NOWHERE


def near_sides(
    node: Node, leaf: Callable[[Term | Phrase], T], field: str | None = None
) -> list[tuple[str | None, T]] | None:
    """A side of NEAR as (field or None, `leaf` of a term or phrase) alternatives, the
    innermost field winning; None if it has no phrase form. Both backends walk sides so:
    FTS5 phrases here, tsquery words in `pgtext`."""
    if isinstance(node, Term | Phrase):
        return [(field, leaf(node))]
    if isinstance(node, Field):
        return near_sides(node.child, leaf, node.name)
    if isinstance(node, Or):
        out: list[tuple[str | None, T]] = []
        for child in node.children:
            found = near_sides(child, leaf, field)
            if found is None:
                return None
            out.extend(found)
        return out
    return None


def _alternatives(node: Node) -> list[tuple[str | None, str]] | None:
    return near_sides(node, lambda leaf: str(fts_expr(leaf)))

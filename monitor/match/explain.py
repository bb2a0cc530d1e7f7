"""A stored match's hits, found again from the terms the store kept.

Ingest stores the terms of a rule that hit an item (`Match.terms`), not their positions:
working out every position was about a third of tagging and matching an item, for matches
that are mostly never shown. `items show` and the console's item page find them here, in the
stored title and summary: the terms are compiled as the engine compiled them (each its own
matchable), so the positions are the ones the match had; and they depend on the terms only,
not on the rule, which may have been edited or deleted since.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.match.engine import Matcher
from monitor.match.nodes import FIELDS, Node, Or, Phrase, Term, to_string
from monitor.match.query import QuerySyntaxError, parse_query
from monitor.match.rule import Hit, Rule
from monitor.match.scan import _Ctx
from monitor.models import Item

__all__ = ["hits_of_terms"]


def hits_of_terms(terms: Sequence[str], item: Item) -> tuple[Hit, ...]:
    """Every place `terms` (as `Match.terms` gave them) hit `item`, in text order, as the
    match's `hits` were; a term in a shape no rule could have written is left out."""
    nodes = {term: node for term in dict.fromkeys(terms) if (node := _term(term)) is not None}
    if not nodes:
        return ()
    tree: Node = next(iter(nodes.values())) if len(nodes) == 1 else Or(tuple(nodes.values()))
    matcher = Matcher.compile([Rule(id="terms", title="terms", tree=tree)])
    ctx = _Ctx(matcher.scan(item.title, item.summary), item, None, matcher.matchables)
    mids = {m.label: mid for mid, m in enumerate(matcher.matchables)}
    # Ties (two terms at one place, `drill*` and `drills`) in the order the terms came in.
    spans = sorted(
        (span, order, term)
        for order, (term, node) in enumerate(nodes.items())
        if (mid := mids.get(to_string(node))) is not None
        for span in ctx.spans(mid)
    )
    return tuple(Hit(term, FIELDS[f], start, end) for (f, start, end), _, term in spans)


def _term(text: str) -> Term | Phrase | None:
    try:
        node = parse_query(text)
    except QuerySyntaxError:
        return None
    return node if isinstance(node, Term | Phrase) else None

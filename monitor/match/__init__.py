"""The match stage: text folding, the query language, alert rules, the region gazetteer and the
one multi-pattern scan that tags regions and finds rule hits. Pure logic over values: no SQL,
no network, files read only when rules and gazetteers load.

Entry points: `load_ruleset` / `check_ruleset` (rules + gazetteer compiled together, with
`RuleSet.match`), `load_gazetteer`, `parse_query`, `load_entities` (the entity gazetteer:
people, organisations and places, loaded and checked; `tagger.EntityTagger` tags items with
them from the same scan, and `compounds` adds the press abbreviations such as `日米`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.match.entities import load_entities
    from monitor.match.query import parse_query
    from monitor.match.regions import load_gazetteer
    from monitor.match.ruleset import RuleSet, check_ruleset, load_ruleset

__all__ = [
    "RuleSet",
    "check_ruleset",
    "load_entities",
    "load_gazetteer",
    "load_ruleset",
    "parse_query",
]
__getattr__ = exports(
    __name__,
    {
        "RuleSet": "ruleset",
        "load_ruleset": "ruleset",
        "check_ruleset": "ruleset",
        "load_gazetteer": "regions",
        "load_entities": "entities",
        "parse_query": "query",
    },
)

"""The rules' own `tests:` examples: each turned into an item and run through a `Matcher`;
`run_rule_tests` returns those that did not behave as their rule says.

Apart from the loader because it runs the engine, and the engine needs the rule values: here it
sits above both, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.match.engine import Matcher
from monitor.match.rule import Example, Match, Rule
from monitor.models import EntityTag, Feed, Item

# --- the rules' own examples ----------------------------------------------------------------

Tagger = Callable[[str, str], tuple[str, ...]]
# The regions (implied ones included) and the entities of a text: `RuleSet.tag_all`.
FullTagger = Callable[[str, str], tuple[tuple[str, ...], tuple[EntityTag, ...]]]


@dataclass(frozen=True)
class TestFailure:
    """One example that did not behave as its rule says. `str()` is a one-line verdict."""

    __test__ = False  # not a pytest test class, whatever its name

    rule: Rule
    example: Example
    expected_match: bool
    matched: Match | None

    def __str__(self) -> str:
        where = f"{self.rule.path}:{self.example.line or self.rule.line}"
        text = _clip(" | ".join(t for t in (self.example.title, self.example.summary) if t))
        if self.expected_match:
            return f"{where}: rule {self.rule.id}: expected a match, got none: {text!r}"
        hits = ", ".join(sorted({h.term for h in self.matched.hits})) if self.matched else ""
        return f"{where}: rule {self.rule.id}: expected no match, but matched ({hits}): {text!r}"


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def example_item(
    example: Example, tagger: Tagger | None = None, full: FullTagger | None = None
) -> tuple[Item, Feed | None]:
    """The item (and feed, when the example names one) an example stands for. `full`, when
    given, tags the entities too (and the regions, unless the example gives them)."""
    regions = example.regions
    entities: tuple[EntityTag, ...] = ()
    if full is not None:
        tagged, entities = full(example.title, example.summary)
        regions = tagged if regions is None else regions
    if regions is None:
        regions = tagger(example.title, example.summary) if tagger else ()
    now = datetime.now(UTC)
    item = Item(
        feed_id=example.feed or "", guid="example", link=None, title=example.title,
        summary=example.summary, html="", author=None, lang=example.lang, published=now,
        first_seen=now, content_hash="", regions=regions, entities=entities,
    )  # fmt: skip
    feed = (
        Feed(id=example.feed or "", url="", tags=example.tags)
        if example.feed or example.tags
        else None
    )
    return item, feed


def run_rule_tests(
    rules: Sequence[Rule],
    matcher: Matcher,
    tagger: Tagger | None = None,
    full: FullTagger | None = None,
) -> list[TestFailure]:
    """Run every rule's `tests` examples through `matcher`; the examples that failed.
    `full` (see `example_item`) makes `entity:` queries work in examples."""
    failures = []
    for rule in rules:
        cases = [(e, True) for e in rule.match_examples] + [
            (e, False) for e in rule.no_match_examples
        ]
        for example, expected in cases:
            item, feed = example_item(example, tagger, full)
            found = next((m for m in matcher.match(item, feed) if m.rule_id == rule.id), None)
            if (found is not None) != expected:
                failures.append(TestFailure(rule, example, expected, found))
    return failures

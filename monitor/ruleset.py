"""The rules in force: alert rules and the gazetteer, compiled together.

A `RuleSet` is immutable. The service builds a new one when a file under `rules/` changes and
swaps the reference: a poll in flight finishes with the set it started with, and an invalid
edit never replaces a good set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ConfigError, ConfigErrors
from monitor.match import Match, Matcher
from monitor.models import Feed, Item
from monitor.regions import Gazetteer, load_gazetteer
from monitor.rules import Rule, load_rules


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    gazetteer: Gazetteer
    matcher: Matcher

    @classmethod
    def compile(cls, rules: tuple[Rule, ...], gazetteer: Gazetteer) -> RuleSet:
        return cls(rules, gazetteer, Matcher.compile(rules))

    def __reduce__(self) -> tuple[object, tuple[tuple[Rule, ...], Gazetteer]]:
        # Sent to parse workers as rules + gazetteer; the matcher is compiled again there
        # (milliseconds) rather than pickling its automaton.
        return (type(self).compile, (self.rules, self.gazetteer))

    def enrich(self, item: Item, feed: Feed | None) -> tuple[Item, list[Match]]:
        """Tag the item's regions, then match every rule against it."""
        tagged = dataclasses.replace(item, regions=self.gazetteer.tag(item.title, item.summary))
        return tagged, self.matcher.match(tagged, feed)

    def tag(self, title: str, summary: str) -> tuple[str, ...]:
        return self.gazetteer.tag(title, summary)


def rule_paths(rules_dir: Path) -> tuple[Path, Path]:
    """Where the alert rules and the gazetteer overrides live under `rules/`."""
    return rules_dir / "alerts", rules_dir / "regions.yaml"


def check_ruleset(rules_dir: Path) -> tuple[RuleSet | None, list[ConfigError]]:
    """Load everything, collecting every error; a RuleSet only when there are none."""
    alerts, regions_file = rule_paths(rules_dir)
    try:
        gazetteer = load_gazetteer(regions_file if regions_file.exists() else None)
    except ConfigError as error:
        return None, [error]
    rules, errors = load_rules(alerts, gazetteer.codes) if alerts.is_dir() else ([], [])
    if errors:
        return None, errors
    return RuleSet.compile(tuple(rules), gazetteer), []


def load_ruleset(rules_dir: Path) -> RuleSet:
    """The rule set, or ConfigErrors naming every problem."""
    ruleset, errors = check_ruleset(rules_dir)
    if ruleset is None:
        raise ConfigErrors(errors)
    return ruleset

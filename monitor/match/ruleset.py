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
from monitor.match.engine import Matcher
from monitor.match.regions import Gazetteer, load_gazetteer
from monitor.match.rule import Match, Rule
from monitor.match.rules import load_rules
from monitor.match.scan import Scan
from monitor.models import Feed, Item


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    gazetteer: Gazetteer
    matcher: Matcher

    @classmethod
    def compile(cls, rules: tuple[Rule, ...], gazetteer: Gazetteer) -> RuleSet:
        # One automaton for every rule term AND every gazetteer alias: an item is scanned
        # once per field, and that one scan serves both region tagging and rule matching.
        aliases = sorted({alias.text for alias in gazetteer.aliases})
        return cls(rules, gazetteer, Matcher.compile(rules, aliases=aliases))

    def __reduce__(self) -> tuple[object, tuple[tuple[Rule, ...], Gazetteer]]:
        # Sent to parse workers as rules + gazetteer; the matcher is compiled again there
        # (milliseconds) rather than pickling its automaton.
        return (type(self).compile, (self.rules, self.gazetteer))

    def enrich(self, item: Item, feed: Feed | None) -> tuple[Item, list[Match]]:
        """Tag the item's regions, then match every rule against it, from one scan."""
        scan = self.matcher.scan(item.title, item.summary)
        tagged = dataclasses.replace(item, regions=self._regions(scan, item.title, item.summary))
        return tagged, self.matcher.match(tagged, feed, scan)

    def tag(self, title: str, summary: str) -> tuple[str, ...]:
        return self._regions(self.matcher.scan(title, summary), title, summary)

    def _regions(self, scan: Scan, title: str, summary: str) -> tuple[str, ...]:
        """The scan's alias hits, resolved by the gazetteer as its own `tag` would.

        The gazetteer resolves one text, `title + "\n" + summary`: summary offsets shift by
        the folded title's length plus one. Its extra boundary rule (a katakana name is not
        part of a longer katakana word) is applied here, as `Gazetteer.accepts` asks.
        """
        shift = len(scan.texts[0]) + 1
        hits = []
        for alias, field, start, end in scan.alias_hits:
            if not self.gazetteer.accepts(scan.texts[field], start, end):
                continue
            offset = shift if field else 0
            for index in self.gazetteer.indices(alias):
                hits.append((index, start + offset, end + offset))
        return self.gazetteer.resolve(hits, raw=f"{title}\n{summary}")


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

"""The rules in force: alert rules and the gazetteer, compiled together.

A `RuleSet` is immutable. The service builds a new one when a file under `rules/` changes and
swaps the reference: a poll in flight finishes with the set it started with, and an invalid
edit never replaces a good set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import ConfigError, ConfigErrors
from monitor.match.engine import Matcher
from monitor.match.entities import load_entities
from monitor.match.regions import Gazetteer, load_gazetteer
from monitor.match.rule import Match, Rule
from monitor.match.rules import load_rules
from monitor.match.scan import Scan
from monitor.match.tagger import EntityTagger, builtin_tagger
from monitor.models import EntityTag, Feed, Item


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    gazetteer: Gazetteer
    matcher: Matcher
    tagger: EntityTagger = field(default_factory=builtin_tagger)

    @classmethod
    def compile(
        cls, rules: tuple[Rule, ...], gazetteer: Gazetteer, tagger: EntityTagger | None = None
    ) -> RuleSet:
        # One automaton for every rule term, gazetteer alias AND entity name: an item is scanned
        # once per field, and that one scan serves region and entity tagging and rule matching.
        tagger = tagger or builtin_tagger()
        aliases = sorted({alias.text for alias in gazetteer.aliases} | set(tagger.alias_texts()))
        return cls(rules, gazetteer, Matcher.compile(rules, aliases=aliases), tagger)

    def __reduce__(self) -> tuple[object, tuple[tuple[Rule, ...], Gazetteer, EntityTagger]]:
        # Sent to parse workers as rules + gazetteer + entities; the matcher is compiled again
        # there (milliseconds) rather than pickling its automaton.
        return (type(self).compile, (self.rules, self.gazetteer, self.tagger))

    def enrich(self, item: Item, feed: Feed | None) -> tuple[Item, list[Match]]:
        """Tag the item's regions and entities, then match every rule against it, from one
        scan."""
        tagged, matches, _, _ = self.enrich_folded(item, feed)
        return tagged, matches

    def enrich_folded(
        self, item: Item, feed: Feed | None
    ) -> tuple[Item, list[Match], tuple[str, str], bytes]:
        """`enrich`, and the item's title and summary as the scan folded them, and their
        words (`Scan.words`): what story evidence reads too, not folded nor split twice."""
        scan = self.matcher.scan(item.title, item.summary)
        regions, entities = self._tags(scan, item.title, item.summary)
        tagged = dataclasses.replace(item, regions=regions, entities=entities)
        return tagged, self.matcher.match(tagged, feed, scan), scan.texts, scan.words

    def tag(self, title: str, summary: str) -> tuple[str, ...]:
        return self._tags(self.matcher.scan(title, summary), title, summary)[0]

    def tag_all(self, title: str, summary: str) -> tuple[tuple[str, ...], tuple[EntityTag, ...]]:
        """The regions (implied ones included) and the entities of a text."""
        return self._tags(self.matcher.scan(title, summary), title, summary)

    def _tags(
        self, scan: Scan, title: str, summary: str
    ) -> tuple[tuple[str, ...], tuple[EntityTag, ...]]:
        """The scan's alias hits, resolved by the gazetteer as its own `tag` would, then by the
        entity tagger; the regions its entities imply join the regions.

        Both resolve one text, `title + "\n" + summary`: summary offsets shift by the folded
        title's length plus one. The gazetteer's extra boundary rule (a katakana name is not
        part of a longer katakana word) is applied here, as `Gazetteer.accepts` asks.
        """
        shift = len(scan.texts[0]) + 1
        raw = f"{title}\n{summary}"
        regions, names = [], []
        for alias, where, start, end in scan.alias_hits:
            if not self.gazetteer.accepts(scan.texts[where], start, end):
                continue
            offset = shift if where else 0
            for index in self.gazetteer.indices(alias):
                regions.append((index, start + offset, end + offset))
            for index in self.tagger.names.indices(alias):
                names.append((index, start + offset, end + offset))
        codes = self.gazetteer.resolve(regions, raw=raw)
        entities = self.tagger.tag(names, scan.texts, raw, codes) if names else ()
        implied = self.tagger.implied_regions(entities)
        if implied - set(codes):
            with_parents = {c for code in implied for c in self.gazetteer.ancestry(code)}
            codes = tuple(sorted(with_parents.union(codes)))
        return codes, entities


def rule_paths(rules_dir: Path) -> tuple[Path, Path, Path]:
    """Where the alert rules, the gazetteer overrides and the entities live under `rules/`
    (the service reloads the rules when any of them changes)."""
    return rules_dir / "alerts", rules_dir / "regions.yaml", rules_dir / "entities.yaml"


def user_gazetteer(rules_dir: Path) -> Gazetteer:
    """The built-in gazetteer with `rules/regions.yaml` applied when there is one."""
    regions_file = rule_paths(rules_dir)[1]
    return load_gazetteer(regions_file if regions_file.exists() else None)


def check_ruleset(rules_dir: Path) -> tuple[RuleSet | None, list[ConfigError]]:
    """Load everything, collecting every error; a RuleSet only when there are none."""
    alerts, _, entities_file = rule_paths(rules_dir)
    try:
        gazetteer = user_gazetteer(rules_dir)
        tagger = load_tagger(entities_file, gazetteer.codes)
    except ConfigError as error:
        return None, [error]
    known = (alerts, gazetteer.codes)
    ids = [e.id for e in tagger.entities]
    rules, errors = load_rules(*known, known_entities=ids) if alerts.is_dir() else ([], [])
    if errors:
        return None, errors
    return RuleSet.compile(tuple(rules), gazetteer, tagger), []


def load_tagger(path: Path, codes: frozenset[str]) -> EntityTagger:
    """The built-in entities, with `rules/entities.yaml` applied when there is one."""
    if not path.exists():
        return builtin_tagger()
    return EntityTagger(load_entities(path, codes=codes))


def load_ruleset(rules_dir: Path) -> RuleSet:
    """The rule set, or ConfigErrors naming every problem."""
    ruleset, errors = check_ruleset(rules_dir)
    if ruleset is None:
        raise ConfigErrors(errors)
    return ruleset

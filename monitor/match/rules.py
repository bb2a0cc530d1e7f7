"""Alert rule files (`rules/alerts/*.yaml`): load, validate, and run the rules' own examples.

Loading never stops at the first problem: `load_rules` returns the good rules *and* every
error found, each a `ConfigError` naming file, line and column, so `monitor rules check` can
print them all at once. A rule with any error is left out; the others still load.
"""

from __future__ import annotations

import copyreg
import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from monitor.errors import ConfigError
from monitor.match.query import Node, Phrase, QuerySyntaxError, Region, Term, parse_query, walk
from monitor.models import SEVERITIES, Feed, Item

if TYPE_CHECKING:
    from monitor.match.engine import Match, Matcher

RULE_KEYS = ("id", "title", "severity", "query", "score", "feeds", "labels", "tests")
SCORE_KEYS = ("threshold", "terms")
TESTS_KEYS = ("match", "no_match")
EXAMPLE_KEYS = ("title", "summary", "feed", "tags", "lang", "regions")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*$")


# Rules travel to the parse workers (see poll.Parser); `labels` is a read-only mapping proxy,
# which pickle cannot handle by itself.
def _read_only(mapping: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(mapping)


copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))


@dataclass(frozen=True)
class Score:
    """EMM-style weighted terms: the weights of the distinct terms present are added up."""

    threshold: float
    terms: tuple[tuple[Term | Phrase, float], ...]


@dataclass(frozen=True)
class Example:
    """One `tests:` example: a bare string is a title; a mapping can set every field."""

    title: str
    summary: str = ""
    feed: str | None = None
    tags: tuple[str, ...] = ()
    lang: str | None = None
    regions: tuple[str, ...] | None = None  # None: computed by the region tagger, if given
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str = "medium"
    query: str | None = None  # as written
    tree: Node | None = None  # parsed `query`
    score: Score | None = None
    feeds: tuple[str, ...] = ()  # feed ids and `tag:NAME`
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    match_examples: tuple[Example, ...] = ()
    no_match_examples: tuple[Example, ...] = ()
    path: str = ""
    line: int | None = field(default=None, compare=False)


class _Errors(list[ConfigError]):
    """The errors of one file, with the helpers that place them."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def add(self, message: str, where: tuple[int, int] | None, hint: str | None = None) -> None:
        line, col = (where[0] + 1, where[1] + 1) if where else (None, None)
        self.append(ConfigError(message, path=self.path, line=line, column=col, hint=hint))


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(choices)}"


def _key_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    return tuple(node.lc.key(key))


def _value_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    return tuple(node.lc.value(key))


def _check_keys(node: CommentedMap, allowed: Sequence[str], what: str, errors: _Errors) -> bool:
    ok = True
    for key in node:
        if key not in allowed:
            errors.add(
                f"unknown key {key!r} in {what}",
                _key_pos(node, key),
                _did_you_mean(str(key), allowed),
            )
            ok = False
    return ok


# --- one rule -------------------------------------------------------------------------------


class _RuleReader:
    """Reads one rule mapping; every problem goes to `errors` and makes `read` return None."""

    def __init__(
        self, node: CommentedMap, errors: _Errors, known_regions: Collection[str] | None
    ) -> None:
        self.node = node
        self.errors = errors
        self.known = None if known_regions is None else {c.upper() for c in known_regions}
        self.before = len(errors)
        self.rule_id = "?"

    def fail(self, message: str, where: tuple[int, int] | None, hint: str | None = None) -> None:
        self.errors.add(f"rule {self.rule_id}: {message}", where, hint)

    def read(self) -> Rule | None:
        node = self.node
        _check_keys(node, RULE_KEYS, "a rule", self.errors)
        rule_id = self.read_id()
        query, tree = self.read_query()
        score = self.read_score()
        if "query" not in node and "score" not in node:
            self.fail("needs a query, a score, or both", (node.lc.line, node.lc.col))
        rule = Rule(
            id=rule_id,
            title=self.text("title") or rule_id,
            severity=self.read_severity(),
            query=query,
            tree=tree,
            score=score,
            feeds=self.read_feeds(),
            labels=self.read_labels(),
            **self.read_tests(),
            path=self.errors.path,
            line=node.lc.line + 1,
        )
        return rule if len(self.errors) == self.before else None

    def text(self, key: str) -> str | None:
        value = self.node.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{key} must be a non-empty string", _value_pos(self.node, key))
            return None
        return str(value)

    def read_id(self) -> str:
        if "id" not in self.node:
            self.fail("has no id", (self.node.lc.line, self.node.lc.col), "add id: some-name")
            return "?"
        value = self.node["id"]
        if not isinstance(value, str) or not _ID.match(value):
            self.fail(
                f"id {value!r} must be lower-case letters, digits and -",
                _value_pos(self.node, "id"),
            )
            return "?"
        self.rule_id = value
        return value

    def read_severity(self) -> str:
        value = self.node.get("severity", "medium")
        if value not in SEVERITIES:
            self.fail(
                f"severity {value!r} is not one of {', '.join(SEVERITIES)}",
                _value_pos(self.node, "severity"),
                _did_you_mean(str(value), SEVERITIES),
            )
        return str(value)

    def read_query(self) -> tuple[str | None, Node | None]:
        query = self.text("query")
        if query is None:
            return None, None
        try:
            tree = parse_query(query)
        except QuerySyntaxError as error:
            self.query_error(query, error)
            return query, None
        self.check_regions(query, tree)
        return query, tree

    def query_position(self, query: str, column: int) -> tuple[int, int]:
        """Where the query's `column` is in the file (exact for one-line scalars)."""
        line, col = _value_pos(self.node, "query")
        if "\n" in query or not isinstance(self.node["query"], str):
            return line, col
        quoted = isinstance(self.node["query"], SingleQuotedScalarString | DoubleQuotedScalarString)
        return line, col + int(quoted) + column - 1

    def query_error(self, query: str, error: QuerySyntaxError) -> None:
        hint = f" ({error.hint})" if error.hint else ""
        message = f"query: {error.message}{hint}\n{error.render()}"
        self.fail(message, self.query_position(query, error.column))

    def check_regions(self, query: str, tree: Node) -> None:
        if self.known is None:
            return
        for node in walk(tree):
            if isinstance(node, Region) and node.code not in self.known:
                column = query.lower().find(f"region:{node.code.lower()}") + 1
                error = QuerySyntaxError(
                    f"unknown region code {node.code}", query=query, column=max(column, 1)
                )
                message = f"query: unknown region code {node.code}\n{error.render()}"
                hint = _did_you_mean(node.code, sorted(self.known)) if self.known else None
                self.fail(message, self.query_position(query, error.column), hint)

    def read_score(self) -> Score | None:
        node = self.node.get("score")
        if node is None:
            return None
        if not isinstance(node, CommentedMap):
            self.fail(
                "score must be a mapping with threshold and terms", _value_pos(self.node, "score")
            )
            return None
        _check_keys(node, SCORE_KEYS, f"the score of rule {self.rule_id}", self.errors)
        threshold = node.get("threshold")
        if not _is_number(threshold):
            where = (
                _value_pos(node, "threshold")
                if "threshold" in node
                else _value_pos(self.node, "score")
            )
            self.fail("score needs a number threshold", where, "e.g. threshold: 4")
            return None
        terms = self.read_score_terms(node)
        return Score(float(threshold), terms) if terms else None

    def read_score_terms(self, score: CommentedMap) -> tuple[tuple[Term | Phrase, float], ...]:
        terms = score.get("terms")
        if not isinstance(terms, CommentedMap) or not terms:
            self.fail("score needs terms: {term: weight, ...}", _value_pos(self.node, "score"))
            return ()
        out: list[tuple[Term | Phrase, float]] = []
        for key, weight in terms.items():
            term = _score_term(str(key))
            if term is None:
                self.fail(
                    f"score term {key!r} must be a word, a prefix* or a phrase",
                    _key_pos(terms, key),
                )
            elif not _is_number(weight):
                self.fail(f"score term {key!r} needs a number weight", _value_pos(terms, key))
            else:
                out.append((term, float(weight)))
        return tuple(out)

    def read_feeds(self) -> tuple[str, ...]:
        value = self.node.get("feeds", [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(
                "feeds must be a list of feed ids and tag:NAME", _value_pos(self.node, "feeds")
            )
            return ()
        return tuple(str(v).strip() for v in value)

    def read_labels(self) -> Mapping[str, str]:
        value = self.node.get("labels", {})
        if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
            self.fail(
                "labels must be a mapping of names to values", _value_pos(self.node, "labels")
            )
            return MappingProxyType({})
        return MappingProxyType({str(k): str(v) for k, v in value.items()})

    def read_tests(self) -> dict[str, tuple[Example, ...]]:
        value = self.node.get("tests")
        if value is None:
            return {}
        if not isinstance(value, CommentedMap):
            self.fail(
                "tests must be a mapping with match and no_match", _value_pos(self.node, "tests")
            )
            return {}
        _check_keys(value, TESTS_KEYS, f"the tests of rule {self.rule_id}", self.errors)
        return {
            "match_examples": self.read_examples(value, "match"),
            "no_match_examples": self.read_examples(value, "no_match"),
        }

    def read_examples(self, tests: CommentedMap, key: str) -> tuple[Example, ...]:
        items = tests.get(key)
        if items is None:
            return ()
        if not isinstance(items, CommentedSeq):
            self.fail(f"tests.{key} must be a list", _value_pos(tests, key))
            return ()
        examples = (self.read_example(item, items.lc.item(i)) for i, item in enumerate(items))
        return tuple(e for e in examples if e is not None)

    def read_example(self, item: Any, where: tuple[int, int]) -> Example | None:
        if isinstance(item, str):
            return Example(title=str(item), line=where[0] + 1)
        if not isinstance(item, CommentedMap) or not isinstance(item.get("title", ""), str):
            self.fail("a test example is a string or a mapping with title/summary", where)
            return None
        if not _check_keys(
            item, EXAMPLE_KEYS, f"a test example of rule {self.rule_id}", self.errors
        ):
            return None
        regions = item.get("regions")
        return Example(
            title=str(item.get("title", "")),
            summary=str(item.get("summary", "")),
            feed=None if item.get("feed") is None else str(item["feed"]),
            tags=tuple(str(t) for t in item.get("tags", [])),
            lang=None if item.get("lang") is None else str(item["lang"]),
            regions=None if regions is None else tuple(str(r).upper() for r in regions),
            line=where[0] + 1,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _score_term(key: str) -> Term | Phrase | None:
    """A score term: a word (`drill*` is a prefix) or, with spaces, a phrase."""
    key = key.strip()
    if any(ch.isspace() for ch in key):
        return Phrase(key) if any(ch.isalnum() for ch in key) else None
    try:
        node = parse_query(key)
    except QuerySyntaxError:
        return None
    return node if isinstance(node, Term | Phrase) else None


# --- files ----------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # so an error column can skip the opening quote
    return yaml


def load_rule_file(
    path: Path, known_regions: Collection[str] | None = None
) -> tuple[list[Rule], list[ConfigError]]:
    """The valid rules of one file and every error in it."""
    errors = _Errors(str(path))
    try:
        doc = _yaml().load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as error:
        mark = error.problem_mark
        where = (mark.line, mark.column) if mark is not None else None
        errors.add(f"not valid YAML: {error.problem}", where)
        return [], errors
    except (YAMLError, OSError, UnicodeDecodeError) as error:
        errors.add(f"cannot read: {error}", None)
        return [], errors
    return _read_document(doc, errors, known_regions), errors


def _read_document(doc: Any, errors: _Errors, known_regions: Collection[str] | None) -> list[Rule]:
    if doc is None:
        return []  # an empty file: nothing to load, nothing wrong
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("rules"), CommentedSeq):
        errors.add(
            "expected a mapping with a list under rules:",
            (0, 0),
            "see the README: rules: - id: ...",
        )
        return []
    _check_keys(doc, ("rules",), "the file", errors)
    rules = []
    for i, node in enumerate(doc["rules"]):
        if not isinstance(node, CommentedMap):
            errors.add("each rule must be a mapping (id, query, ...)", doc["rules"].lc.item(i))
            continue
        rule = _RuleReader(node, errors, known_regions).read()
        if rule is not None:
            rules.append(rule)
    return rules


def load_rules(
    directory: Path, known_regions: Collection[str] | None = None
) -> tuple[list[Rule], list[ConfigError]]:
    """Load every `*.yaml`/`*.yml` in `directory` (the `rules/alerts` folder), in name order.

    `known_regions` are the region codes `region:XX` may use; None skips that check.
    Returns the valid rules and every error, duplicate ids across files included.
    """
    if not directory.is_dir():
        hint = "create it, or point --rules at the right folder"
        return [], [ConfigError("no such rules directory", path=str(directory), hint=hint)]
    rules: list[Rule] = []
    errors: list[ConfigError] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        file_rules, file_errors = load_rule_file(path, known_regions)
        rules.extend(file_rules)
        errors.extend(file_errors)
    return _drop_duplicates(rules, errors), errors


def _drop_duplicates(rules: list[Rule], errors: list[ConfigError]) -> list[Rule]:
    first: dict[str, Rule] = {}
    kept = []
    for rule in rules:
        if rule.id in first:
            other = first[rule.id]
            message = f"duplicate rule id {rule.id!r}: also defined at {other.path}:{other.line}"
            errors.append(
                ConfigError(
                    message, path=rule.path, line=rule.line, hint="ids must be unique across files"
                )
            )
        else:
            first[rule.id] = rule
            kept.append(rule)
    return kept


# --- the rules' own examples ----------------------------------------------------------------

Tagger = Callable[[str, str], tuple[str, ...]]


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


def example_item(example: Example, tagger: Tagger | None = None) -> tuple[Item, Feed | None]:
    """The item (and feed, when the example names one) an example stands for."""
    regions = example.regions
    if regions is None:
        regions = tagger(example.title, example.summary) if tagger else ()
    now = datetime.now(UTC)
    item = Item(
        feed_id=example.feed or "", guid="example", link=None, title=example.title,
        summary=example.summary, html="", author=None, lang=example.lang, published=now,
        first_seen=now, content_hash="", regions=regions,
    )  # fmt: skip
    feed = (
        Feed(id=example.feed or "", url="", tags=example.tags)
        if example.feed or example.tags
        else None
    )
    return item, feed


def run_rule_tests(
    rules: Sequence[Rule], matcher: Matcher, tagger: Tagger | None = None
) -> list[TestFailure]:
    """Run every rule's `tests` examples through `matcher`; the examples that failed."""
    failures = []
    for rule in rules:
        cases = [(e, True) for e in rule.match_examples] + [
            (e, False) for e in rule.no_match_examples
        ]
        for example, expected in cases:
            item, feed = example_item(example, tagger)
            found = next((m for m in matcher.match(item, feed) if m.rule_id == rule.id), None)
            if (found is not None) != expected:
                failures.append(TestFailure(rule, example, expected, found))
    return failures

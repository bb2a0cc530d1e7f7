"""Reading one rule mapping of a rule file into a `Rule`, checking every value on the way.

A problem never stops the reader: each is a `ConfigError` placed at its file, line and column
(`_Errors`), and the rule with any is left out. Apart from the file loader (`rules.py`), which
parses the YAML and hands each rule mapping here.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from monitor.errors import ConfigError
from monitor.match.lexer import query_warnings, render_caret
from monitor.match.nodes import EntityScope, Node, Phrase, Region, Term, walk
from monitor.match.query import MAX_TERMS, QuerySyntaxError, parse_query
from monitor.match.rule import Example, Rule, RuleWarning, Score
from monitor.models import SEVERITIES

RULE_KEYS: tuple[str, ...] = ("id", "title", "severity", "query", "score", "feeds", "labels")
RULE_KEYS += ("tests", "enabled", "mute_until")
SCORE_KEYS = ("threshold", "terms")
TESTS_KEYS = ("match", "no_match")
EXAMPLE_KEYS = ("title", "summary", "feed", "tags", "lang", "regions")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*$")


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
        self,
        node: CommentedMap,
        errors: _Errors,
        known_regions: Collection[str] | None,
        known_entities: Collection[str] | None = None,
    ) -> None:
        self.node = node
        self.errors = errors
        self.known = None if known_regions is None else {c.upper() for c in known_regions}
        self.entities = known_entities
        self.before = len(errors)
        self.rule_id = "?"
        self.warnings: list[RuleWarning] = []

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
            title=self.read_title() or rule_id,
            severity=self.read_severity(),
            query=query,
            tree=tree,
            score=score,
            feeds=self.read_feeds(),
            labels=self.read_labels(),
            **self.read_tests(),
            path=self.errors.path,
            line=node.lc.line + 1,
            enabled=self.read_enabled(),
            mute_until=self.read_mute_until(),
            warnings=tuple(self.warnings),
        )
        return rule if len(self.errors) == self.before else None

    def warn(self, message: str, where: tuple[int, int], hint: str | None = None) -> None:
        line, column = where[0] + 1, where[1] + 1
        self.warnings.append(RuleWarning(f"rule {self.rule_id}: {message}", line, column, hint))

    def read_title(self) -> str | None:
        """The title on one line, whitespace runs collapsed: a block scalar (`title: >`) ends
        in a newline, and titles go into mail subjects, where a line break would end the
        header."""
        value = self.node.get("title")
        if value is None:
            return None
        title = " ".join(value.split()) if isinstance(value, str) else ""
        where = _value_pos(self.node, "title")
        if not title:
            self.fail("title must be a non-empty string", where, "or leave it out to use the id")
        elif any(unicodedata.category(c) == "Cc" for c in title):
            self.fail("title contains a control character", where, "remove it")
        return title or None

    def read_enabled(self) -> bool:
        value = self.node.get("enabled", True)
        if not isinstance(value, bool):
            self.fail(f"enabled must be true or false, got {value!r}", self.where("enabled"))
            return True
        return value

    def read_mute_until(self) -> date | None:
        value = self.node.get("mute_until")
        if value is None:
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a date: refused just below
                value = date.fromisoformat(value.strip())
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        hint = "write a date, e.g. mute_until: 2025-12-20 (matches are held until that day)"
        self.fail(f"mute_until must be a date, got {str(value)!r}", self.where("mute_until"), hint)
        return None

    def where(self, key: str) -> tuple[int, int]:
        return _value_pos(self.node, key)

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
        self.check_entities(query, tree)
        for warning in query_warnings(query):
            hint = f" ({warning.hint})" if warning.hint else ""
            message = f"query: {warning.message}{hint}\n{render_caret(query, warning.column)}"
            self.warn(message, self.query_position(query, warning.column))
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
                self.fail(
                    message, self.query_position(query, error.column), self.codes_like(node.code)
                )

    def check_entities(self, query: str, tree: Node) -> None:
        """`entity:ID` must name a known entity: a typo would silently never match."""
        if self.entities is None:
            return
        for node in walk(tree):
            if isinstance(node, EntityScope) and node.id and node.id not in self.entities:
                column = max(query.lower().find(f"entity:{node.id}") + 1, 1)
                error = QuerySyntaxError(f"unknown entity {node.id}", query=query, column=column)
                message = f"query: unknown entity {node.id}\n{error.render()}"
                close = difflib.get_close_matches(node.id, sorted(self.entities), n=1, cutoff=0.6)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "add it to rules/entities.yaml, or write entity:type:person (org, place)"
                )
                self.fail(message, self.query_position(query, column), hint)

    def codes_like(self, code: str) -> str:
        """The few known codes closest to `code`, never the whole list of ~250."""
        close = difflib.get_close_matches(code, sorted(self.known or ()), n=3, cutoff=0.5)
        if len(close) > 1:
            return f"did you mean one of {', '.join(map(repr, close))}?"
        if close:
            return f"did you mean {close[0]!r}?"
        return "use an ISO 3166-1 code such as TW, or define a code in rules/regions.yaml"

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
        if len(terms) > MAX_TERMS:
            hint = "split the rule into several"
            self.fail(f"score has more than {MAX_TERMS:,} terms", _value_pos(score, "terms"), hint)
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

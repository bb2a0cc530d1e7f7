"""Rule files: loading, every error message with its file:line:column, and the rules' examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.match.engine import Matcher
from monitor.match.examples import run_rule_tests
from monitor.match.nodes import Phrase, Term
from monitor.match.rule import Example, Rule
from monitor.match.rules import load_rule_file, load_rules

# A complete, valid rule file: every field used once. Expected: one rule, no error.
GOOD = """\
rules:
  - id: taiwan-strait-military
    title: Military pressure in the Taiwan Strait
    severity: high
    query: '("Taiwan Strait" OR 台湾海峡 OR cross-strait) AND (drill* OR blockade OR PLA)
      AND NOT film'
    score:
      threshold: 4
      terms: {blockade: 3, invasion: 3, "live-fire": 2, PLA: 1, "Taiwan Strait": 1}
    feeds: [tag:asia, nhk-world]
    labels: {desk: asia, priority: 1}
    tests:
      match: ["PLA announces blockade drills around Taiwan Strait"]
      no_match:
        - "Taiwan Strait: a film review"
        - {title: Taiwan Strait ferry, summary: Passenger service restarts, lang: en}
  - id: minimal
    query: taiwan
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str, known: list[str] | None = None) -> list[ConfigError]:
    rules, errors = load_rule_file(write(tmp_path, "x.yaml", text), known)
    assert not rules, "a rule with an error must not load"
    return errors


def test_a_valid_file_loads(tmp_path: Path) -> None:
    rules, errors = load_rules(write(tmp_path, "a.yaml", GOOD).parent)
    assert errors == []
    first, minimal = rules
    assert first.id == "taiwan-strait-military"
    assert first.severity == "high"
    assert first.score is not None and first.score.threshold == 4
    assert (Term("PLA"), 1.0) in first.score.terms
    assert (Phrase("Taiwan Strait"), 1.0) in first.score.terms
    assert first.feeds == ("tag:asia", "nhk-world")
    assert dict(first.labels) == {"desk": "asia", "priority": "1"}
    assert [e.title for e in first.match_examples] == [
        "PLA announces blockade drills around Taiwan Strait"
    ]
    assert first.no_match_examples[1] == Example(
        "Taiwan Strait ferry", "Passenger service restarts", lang="en"
    )
    assert first.line == 2 and first.path.endswith("a.yaml")
    assert (minimal.severity, minimal.title, minimal.score) == ("medium", "minimal", None)


def test_empty_files_and_yml_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "# nothing yet\n")
    write(tmp_path, "b.yml", "rules:\n  - {id: b, query: x}\n")
    rules, errors = load_rules(tmp_path)
    assert (errors, [r.id for r in rules]) == ([], ["b"])


def test_missing_directory(tmp_path: Path) -> None:
    rules, errors = load_rules(tmp_path / "nope")
    assert rules == []
    assert "no such rules directory" in str(errors[0])


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        # An unknown key, with the closest known one suggested.
        (
            "rules:\n  - id: a\n    qeury: x\n",
            (3, 5),
            "unknown key 'qeury' in a rule (did you mean 'query'?)",
        ),
        (
            "rules:\n  - id: a\n    severity: hihg\n    query: x\n",
            (3, 15),
            "rule a: severity 'hihg' is not one of info, low, medium, high, critical"
            " (did you mean 'high'?)",
        ),
        ("rules:\n  - id: a\n    title: A\n", (2, 5), "rule a: needs a query, a score, or both"),
        (
            "rules:\n  - id: a\n    query: NOT film\n",
            (3, 12),
            "rule a: query: this part matches only by what is absent",
        ),
        ("rules:\n  - id: Bad_Id\n    query: x\n", (2, 9), "id 'Bad_Id' must be lower-case"),
        ("rules:\n  - query: x\n", (2, 5), "rule ?: has no id"),
        (
            "rules:\n  - id: a\n    score: {terms: {x: 1}}\n",
            (3, 12),
            "rule a: score needs a number threshold",
        ),
        (
            "rules:\n  - id: a\n    score: {threshold: 1, terms: {x: many}}\n",
            (3, 38),
            "rule a: score term 'x' needs a number weight",
        ),
        (
            "rules:\n  - id: a\n    score: {threshold: 1, terms: {AND: 1}}\n",
            (3, 35),
            "rule a: score term 'AND' must be a word, a prefix* or a phrase",
        ),
        (
            "rules:\n  - id: a\n    query: x\n    tests: {match: [{title: t, sumary: s}]}\n",
            (4, 32),
            "unknown key 'sumary' in a test example of rule a (did you mean 'summary'?)",
        ),
        ("rules:\n  - id: a\n    query: x\n    feeds: tag:asia\n", (4, 12), "feeds must be a list"),
        ("rules: [1]\n", (1, 9), "each rule must be a mapping"),
        ("- id: a\n", (1, 1), "expected a mapping with a list under rules:"),
        ("rules:\n  - id: a\n   query: [x\n", (3, 4), "invalid YAML"),
        ("rules:\n  - id: a\n    id: b\n", (3, 5), "invalid YAML: found duplicate key"),
    ],
)
def test_error_messages(tmp_path: Path, text: str, where: tuple[int, int], message: str) -> None:
    errors = errors_of(tmp_path, text)
    assert errors, "expected an error"
    error = errors[0]
    assert error.path.endswith("x.yaml")
    assert message in str(error)
    assert (error.line, error.column) == where


def test_query_syntax_error_points_into_the_query_with_a_caret(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, "rules:\n  - id: a\n    query: 'taiwan AND (blockade OR'\n")
    assert (error.line, error.column) == (3, 12 + 1 + 23)  # value column + quote + query column
    first, query, caret = str(error).splitlines()
    assert first.endswith("x.yaml:3:36: rule a: query: expected a term after OR")
    assert query == "    taiwan AND (blockade OR"
    assert caret == "    " + " " * 23 + "^"


def test_plain_scalar_query_column(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, "rules:\n  - id: a\n    query: a AND\n")
    assert (error.line, error.column) == (3, 17)


def test_unknown_region_code(tmp_path: Path) -> None:
    text = "rules:\n  - id: a\n    query: taiwan region:TWN\n"
    (error,) = errors_of(tmp_path, text, known=["TW", "JP"])
    assert "rule a: query: unknown region code TWN" in str(error)
    assert error.hint == "did you mean 'TW'?"
    assert (error.line, error.column) == (3, 19)
    # Known codes load, in any case; without a list of codes nothing is checked.
    assert load_rule_file(write(tmp_path, "y.yaml", text.replace("TWN", "tw")), ["TW"])[0]
    assert load_rule_file(write(tmp_path, "z.yaml", text), None)[0]


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {id: dup, query: x}\n")
    write(tmp_path, "b.yaml", "rules:\n  - {id: other, query: y}\n  - {id: dup, query: z}\n")
    rules, errors = load_rules(tmp_path)
    assert [r.id for r in rules] == ["dup", "other"]
    (error,) = errors
    assert str(error).startswith(f"{tmp_path / 'b.yaml'}:3: duplicate rule id 'dup'")
    assert f"also defined at {tmp_path / 'a.yaml'}:2" in str(error)


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(
        tmp_path,
        "b.yaml",
        "rules:\n"
        "  - {id: one, query: 'a AND'}\n"
        "  - {id: two, severity: urgent, query: x, colour: red}\n"
        "  - {id: three, query: y}\n",
    )
    write(tmp_path, "c.yaml", "rules: [\n")
    rules, errors = load_rules(tmp_path)
    assert [r.id for r in rules] == ["taiwan-strait-military", "minimal", "three"]
    messages = [str(e) for e in errors]
    assert len(messages) == 4, messages
    assert any("rule one: query: expected a term after AND" in m for m in messages)
    assert any("rule two: severity 'urgent'" in m for m in messages)
    assert any("unknown key 'colour'" in m for m in messages)
    assert any("c.yaml:2:1: invalid YAML" in m for m in messages)


def test_run_rule_tests_reports_each_failing_example(tmp_path: Path) -> None:
    text = GOOD + (
        "  - id: wrong-examples\n"
        "    query: blockade\n"
        "    tests:\n"
        "      match: [a quiet day]\n"
        "      no_match: [Blockade ends]\n"
    )
    rules, errors = load_rules(write(tmp_path, "a.yaml", text).parent)
    assert errors == []
    failures = run_rule_tests(rules, Matcher.compile(rules))
    assert [(f.rule.id, f.expected_match) for f in failures] == [
        ("wrong-examples", True),
        ("wrong-examples", False),
    ]
    path = tmp_path / "a.yaml"
    assert str(failures[0]) == (
        f"{path}:22: rule wrong-examples: expected a match, got none: 'a quiet day'"
    )
    assert str(failures[1]) == (
        f"{path}:23: rule wrong-examples: expected no match, but matched (blockade):"
        " 'Blockade ends'"
    )


def test_examples_can_set_feed_tags_lang_and_regions() -> None:
    from monitor.match.query import parse_query

    rule = Rule(
        id="r",
        title="r",
        tree=parse_query("region:KP lang:ko"),
        feeds=("tag:korea",),
        match_examples=(Example("x", feed="f", tags=("korea",), lang="ko", regions=("KP",)),),
        no_match_examples=(
            Example("x", feed="f", tags=("japan",), lang="ko", regions=("KP",)),
            Example("북한", lang="ko"),  # the tagger below finds no region
        ),
    )
    failures = run_rule_tests([rule], Matcher.compile([rule]), tagger=lambda t, s: ())
    assert failures == []

"""Rule files that are odd rather than wrong, and the keys that switch a rule off: titles
normalised, files too deep or too big, bytes that are not UTF-8, things in rules/alerts/ that
are not files, `enabled: false`, `mute_until:`, and the warnings a query earns."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.match.regions import load_gazetteer
from monitor.match.rule import Rule, held
from monitor.match.rules import MAX_RULES_PER_FILE, load_rule_file, load_rules
from monitor.yamlfile.check import MAX_DEPTH


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, known: list[str] | None = None) -> Rule:
    rules, errors = load_rule_file(write(tmp_path, "x.yaml", text), known)
    assert errors == []
    (rule,) = rules
    return rule


def only_error(tmp_path: Path, text: str | bytes) -> ConfigError:
    path = tmp_path / "x.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    rules, errors = load_rule_file(path)
    assert rules == []
    (error,) = errors
    return error


# --- titles: one line, as they go into mail subjects ------------------------------------------


def test_a_block_title_is_folded_to_one_line(tmp_path: Path) -> None:
    text = "rules:\n  - id: a\n    query: x\n    title: >\n      Military pressure\n"
    text += "      in the   Strait\n"
    assert load_one(tmp_path, text).title == "Military pressure in the Strait"
    literal = text.replace("title: >", "title: |")
    assert load_one(tmp_path, literal).title == "Military pressure in the Strait"


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ('"  \\n  "', "title must be a non-empty string"),
        ("|\n      \n", "title must be a non-empty string"),
        ('"alarm\\u0007bell"', "title contains a control character"),
        ("[a, b]", "title must be a non-empty string"),
    ],
)
def test_a_title_empty_after_folding_is_an_error_at_its_line(
    tmp_path: Path, title: str, words: str
) -> None:
    error = only_error(tmp_path, f"rules:\n  - id: a\n    query: x\n    title: {title}\n")
    assert (error.line, error.column) == (4, 12)
    assert f"rule a: {words}" in str(error)


# --- deep, big, or not UTF-8 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "nested",
    [
        "".join(f"\n{'  ' * (i + 2)}k{i}:" for i in range(300)) + " 1\n",  # block mappings
        " " + "[" * 300 + "]" * 300 + "\n",  # a flow list, the RecursionError of the issue
        " " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",  # found by the walk
    ],
)
def test_yaml_nested_too_deep_is_an_error_with_its_line(tmp_path: Path, nested: str) -> None:
    error = only_error(tmp_path, f"rules:\n  - id: a\n    query: x\n    labels:{nested}")
    assert f"nested deeper than {MAX_DEPTH} levels" in error.message
    assert error.line is not None and error.line >= 4
    assert str(error).startswith(f"{tmp_path / 'x.yaml'}:{error.line}:")


def test_yaml_nested_up_to_the_limit_is_read(tmp_path: Path) -> None:
    # The file, rules, a rule, tests, match, an example: 6 levels; its tags nest the rest.
    depth = MAX_DEPTH - 6
    regions = "[" * depth + "]" * depth
    text = (
        f"rules:\n  - id: a\n    query: x\n    tests: {{match: [{{title: x, tags: {regions}}}]}}\n"
    )
    rules, errors = load_rule_file(write(tmp_path, "x.yaml", text))
    assert (errors, [r.id for r in rules]) == ([], ["a"])


def test_more_rules_in_a_file_than_the_limit_is_an_error(tmp_path: Path) -> None:
    lines = "".join(f"  - {{id: r{i}, query: x}}\n" for i in range(MAX_RULES_PER_FILE + 1))
    error = only_error(tmp_path, "rules:\n" + lines)
    assert error.message == f"more than {MAX_RULES_PER_FILE:,} rules in one file"
    assert error.line == MAX_RULES_PER_FILE + 2  # the first rule too many


def test_bytes_that_are_not_utf8_are_reported_at_line_and_column(tmp_path: Path) -> None:
    error = only_error(tmp_path, "rules:\n  - id: a\n    query: 台湾 caf".encode() + b"\xe9\n")
    assert (error.line, error.column) == (3, 18)  # after `    query: 台湾 caf`, in characters
    assert "byte 0xe9" in error.message and "not UTF-8" in error.message


# --- what is not a regular file ------------------------------------------------------------


def test_a_fifo_among_the_rule_files_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {id: a, query: x}\n")
    os.mkfifo(tmp_path / "x.yaml")  # reading it would block for ever: no writer
    (tmp_path / "folder.yml").mkdir()
    with caplog.at_level(logging.WARNING, logger="monitor.rules"):
        rules, errors = load_rules(tmp_path)
    assert ([r.id for r in rules], errors) == (["a"], [])
    warned = sorted(r.getMessage() for r in caplog.records)
    assert warned == [
        f"{tmp_path / 'folder.yml'}: skipped: not a regular file (move it out of rules/alerts/, "
        "or replace it with a YAML file)",
        f"{tmp_path / 'x.yaml'}: skipped: not a regular file (move it out of rules/alerts/, "
        "or replace it with a YAML file)",
    ]


def test_a_symlink_to_a_rule_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, "real.txt", "rules:\n  - {id: a, query: x}\n")
    (tmp_path / "linked.yaml").symlink_to(target)
    rules, errors = load_rules(tmp_path)
    assert ([r.id for r in rules], errors) == (["a"], [])


# --- enabled and mute_until ----------------------------------------------------------------

SWITCHED = """\
rules:
  - {id: on, query: x}
  - {id: off, query: x, enabled: false}
  - {id: snoozed, query: x, mute_until: 2025-12-20}
  - {id: quoted, query: x, mute_until: "2025-12-20"}
"""


def test_a_disabled_rule_is_checked_but_left_out(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SWITCHED)
    rules, errors = load_rules(tmp_path)
    assert errors == [] and [r.id for r in rules] == ["on", "snoozed", "quoted"]
    every, _ = load_rules(tmp_path, include_disabled=True)
    assert [(r.id, r.enabled) for r in every][:2] == [("on", True), ("off", False)]
    # Its id stays taken, and its errors are still errors.
    write(
        tmp_path,
        "b.yaml",
        "rules:\n  - {id: off, query: y}\n  - {id: z, query: 'NOT a', enabled: false}\n",
    )
    _, errors = load_rules(tmp_path)
    assert [e.line for e in errors] == [3, 2]
    assert "absent" in errors[0].message and "duplicate rule id 'off'" in errors[1].message


def test_mute_until_is_a_date_read_plain_or_quoted(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SWITCHED)
    rules = {r.id: r for r in load_rules(tmp_path)[0]}
    assert rules["snoozed"].mute_until == rules["quoted"].mute_until == date(2025, 12, 20)
    assert rules["on"].mute_until is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2025-12-32", "invalid date: day is out of range for month"),  # YAML's own date
        ("2025-12-20T09:00:00", "rule a: mute_until must be a date"),
        ("soon", "rule a: mute_until must be a date"),
        ("'2025-13-01'", "rule a: mute_until must be a date"),
        ("[1]", "rule a: mute_until must be a date"),
    ],
)
def test_a_bad_mute_until_is_an_error(tmp_path: Path, value: str, words: str) -> None:
    error = only_error(tmp_path, f"rules:\n  - id: a\n    query: x\n    mute_until: {value}\n")
    assert (error.line, error.column) == (4, 17)
    assert words in error.message
    assert error.hint is not None and ("2025-12-20" in error.hint or "quote" in error.hint)


def test_enabled_must_be_a_boolean(tmp_path: Path) -> None:
    error = only_error(tmp_path, "rules:\n  - id: a\n    query: x\n    enabled: nope\n")
    assert (error.line, error.column, error.message) == (
        4,
        14,
        "rule a: enabled must be true or false, got 'nope'",
    )


def test_a_muted_rule_is_held_until_its_day_begins_in_the_routes_time_zone() -> None:
    rule = Rule("a", "A", mute_until=date(2025, 12, 20))
    late_utc = datetime(2025, 12, 19, 20, 0, tzinfo=UTC)  # already the 20th in Tokyo
    assert held(rule, late_utc) and held(rule, late_utc, "UTC")
    assert not held(rule, late_utc, "Asia/Tokyo")
    assert not held(rule, datetime(2025, 12, 20, 0, 0, tzinfo=UTC))
    assert not held(Rule("b", "B"), late_utc)
    assert not held(None, late_utc)  # a rule deleted since it matched: delivered


# --- warnings ------------------------------------------------------------------------------


def test_a_lower_case_operator_is_a_warning_at_its_place_in_the_file(tmp_path: Path) -> None:
    rule = load_one(tmp_path, "rules:\n  - id: a\n    query: 'taiwan or japan'\n")
    (warning,) = rule.warnings
    assert (warning.line, warning.column) == (3, 20)  # the `or`, past the opening quote
    assert warning.message.startswith("rule a: query: 'or' is searched as a word")
    assert "did you mean OR?" in warning.message and '"or" in quotes' in warning.message
    assert warning.message.endswith("    taiwan or japan\n           ^")


def test_an_unknown_region_gets_the_few_closest_codes(tmp_path: Path) -> None:
    codes = sorted(load_gazetteer().codes)
    assert len(codes) > 200
    _, (error,) = load_rule_file(
        write(tmp_path, "y.yaml", "rules:\n  - id: a\n    query: taiwan region:TWN\n"), codes
    )
    assert error.hint == "did you mean one of 'TW', 'TN'?"
    _, (error,) = load_rule_file(
        write(tmp_path, "z.yaml", "rules:\n  - id: a\n    query: region:QQ x\n"), codes
    )
    assert error.hint is not None and error.hint.startswith("did you mean one of ")
    assert error.hint.count("'") == 6  # three codes, not all of them

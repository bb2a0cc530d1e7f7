"""`monitor rules check`: one pre-flight check of every file under rules/ (feeds, regions,
alert rules, channels), every problem with file:line, `--json` for scripts; and what
`enabled: false` and `mute_until:` look like from the command line."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main

REPO_RULES = Path(__file__).resolve().parents[2] / "rules"
FUTURE = (datetime.now(UTC) + timedelta(days=30)).date()

GOOD_RULES = f"""\
rules:
  - id: strait
    title: >
      Military pressure
      in the Taiwan Strait
    query: '"Taiwan Strait" AND (drill* OR blockade)'
    tests: {{match: ["PLA drills in the Taiwan Strait"], no_match: ["Taiwan Strait ferry"]}}
  - id: asleep
    query: typhoon
    enabled: false
    tests: {{match: ["Typhoon nears Okinawa"]}}
  - id: snoozed
    query: earthquake
    mute_until: {FUTURE}
"""


def run(rules: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(rules / "x.db"), *args])


def check_json(rules: Path) -> tuple[int, dict[str, Any]]:
    result = run(rules, "rules", "check", "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    (folder / "alerts").mkdir(parents=True)
    (folder / "alerts" / "a.yaml").write_text(GOOD_RULES, encoding="utf-8")
    return folder


def test_a_clean_folder_passes_and_lists_disabled_and_muted_rules(rules: Path) -> None:
    result = run(rules, "rules", "check")
    assert result.exit_code == 0, result.output
    assert f"muted: rule snoozed until {FUTURE} ({rules / 'alerts' / 'a.yaml'}:12)" in result.stdout
    assert result.stdout.endswith("ok: 3 rules (1 disabled, 1 muted), 3 examples pass\n")
    code, doc = check_json(rules)
    assert code == 0 and doc["problems"] == []
    assert doc["summary"] == {
        "ok": True,
        "errors": 0,
        "failing_examples": 0,
        "warnings": 0,
        "rules": 3,
        "examples": 3,
        "disabled": ["asleep"],
        "muted": [{"rule": "snoozed", "until": str(FUTURE)}],
    }


def test_the_shipped_rules_folder_passes(tmp_path: Path) -> None:
    shutil.copytree(REPO_RULES, tmp_path / "rules")
    code, doc = check_json(tmp_path / "rules")
    assert (code, doc["problems"]) == (0, [])
    assert doc["summary"]["rules"] > 10


def test_a_disabled_rule_never_matches_but_its_examples_still_run(rules: Path) -> None:
    tried = run(rules, "rules", "test", "--text", "Typhoon nears Okinawa")
    assert tried.exit_code == 0 and "no rule matches" in tried.output
    text = GOOD_RULES.replace('match: ["Typhoon nears Okinawa"]', 'match: ["Calm seas"]')
    (rules / "alerts" / "a.yaml").write_text(text, encoding="utf-8")
    code, doc = check_json(rules)
    assert code == 1
    (problem,) = doc["problems"]
    assert (problem["line"], problem["level"]) == (11, "error")
    assert problem["message"] == "rule asleep: expected a match, got none: 'Calm seas'"
    assert doc["summary"]["failing_examples"] == 1


BROKEN = {
    "feeds.yaml": "feeds:\n  - url: https://a.example.org/rss\n    intervall: 10m\n",
    "regions.yaml": "regions:\n  XSH: {name: Scarborough Shoal, parent: PHL}\n",
    "channels.yaml": """\
receivers:
  - id: desk
    email:
      to: [desk@example.org]
      from: "Monitor\\n<monitor@example.org>"
      smtp: {host: localhost, port: 70000}
routes:
  - receiver: desk
    schedule: "0 25 * * *"
""",
    "alerts/b.yaml": "rules:\n  - id: b\n    title: ' '\n    query: 'taiwan and (drills'\n",
}


def test_every_file_is_checked_and_every_error_named_by_file_and_line(rules: Path) -> None:
    for name, text in BROKEN.items():
        (rules / name).write_text(text, encoding="utf-8")
    result = run(rules, "rules", "check")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    where = [line.split(": ")[1] for line in errors]
    assert where == [
        f"{rules / 'feeds.yaml'}:3:5",
        f"{rules / 'regions.yaml'}:2:42",
        f"{rules / 'alerts' / 'b.yaml'}:4:24",  # the query is read before the title
        f"{rules / 'alerts' / 'b.yaml'}:3:12",
        f"{rules / 'channels.yaml'}:5:13",
    ]
    assert "did you mean 'interval'?" in errors[0]
    assert "rule b: query: missing ')'" in errors[2]
    assert "rule b: title must be a non-empty string" in errors[3]
    assert "line break" in errors[4]
    assert result.stderr.endswith("5 errors, 0 failing examples\n")


@pytest.mark.parametrize(
    ("smtp", "route", "words"),
    [
        ("{host: localhost, port: 70000}", "schedule: immediate", "between 1 and 65535"),
        ("{host: localhost}", 'schedule: "0 25 * * *"', "hour"),
        ("{host: localhost}", "timezone: Mars/Olympus", "unknown timezone"),
    ],
)
def test_channels_are_checked_with_ports_crons_and_zones(
    rules: Path, smtp: str, route: str, words: str
) -> None:
    channels = f"""\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: monitor@example.org, smtp: {smtp}}}
routes:
  - receiver: desk
    match: {{rules: [strait, asleep]}}
    {route}
"""
    (rules / "channels.yaml").write_text(channels, encoding="utf-8")
    code, doc = check_json(rules)
    assert code == 1
    (problem,) = doc["problems"]
    assert problem["file"] == str(rules / "channels.yaml") and problem["level"] == "error"
    assert problem["line"] in (3, 7) and words in problem["message"].lower()


def test_routes_naming_an_unknown_rule_are_errors(rules: Path) -> None:
    channels = """\
receivers:
  - {id: desk, email: {to: [d@example.org], from: m@example.org, smtp: {host: localhost}}}
routes:
  - {receiver: desk, match: {rules: [straits]}}
"""
    (rules / "channels.yaml").write_text(channels, encoding="utf-8")
    code, doc = check_json(rules)
    (problem,) = doc["problems"]
    assert (code, problem["line"]) == (1, 4)
    assert "unknown rule 'straits'" in problem["message"] and "'strait'" in problem["message"]


def test_warnings_are_shown_but_do_not_fail(rules: Path) -> None:
    text = GOOD_RULES + "  - id: lower\n    query: taiwan or japan\n"
    text += "  - id: woke\n    query: x\n    mute_until: 2020-01-01\n"
    (rules / "alerts" / "a.yaml").write_text(text, encoding="utf-8")
    os.mkfifo(rules / "alerts" / "pipe.yaml")
    result = run(rules, "rules", "check")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    path = rules / "alerts" / "a.yaml"
    assert warnings == [
        f"warning: {rules / 'alerts' / 'pipe.yaml'}: skipped: not a regular file "
        "(move it out of rules/alerts/, or replace it with a YAML file)",
        f"warning: {path}:16:19: rule lower: query: 'or' is searched as a word, not as an "
        'operator: did you mean OR? (operators are in capitals; write "or" in quotes to mean '
        "the word)",
        f"warning: {path}:17: rule woke: mute_until 2020-01-01 has passed: it delivers again "
        "(remove the mute_until line)",
    ]
    assert result.stdout.endswith(
        "ok: 5 rules (1 disabled, 1 muted), 3 examples pass, 3 warnings\n"
    )
    code, doc = check_json(rules)
    assert code == 0
    assert [(p["file"], p["line"], p["column"], p["level"]) for p in doc["problems"]] == [
        (str(rules / "alerts" / "pipe.yaml"), None, None, "warning"),
        (str(path), 16, 19, "warning"),
        (str(path), 17, None, "warning"),
    ]
    assert doc["summary"]["warnings"] == 3 and doc["summary"]["ok"] is True


DEEP = "[" * 300 + "]" * 300


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("feeds.yaml", f"feeds:\n  - url: https://a.example.org/rss\n    tags: {DEEP}\n", 3),
        ("regions.yaml", f"regions:\n  XSH:\n    name: x\n    aliases: {{en: {DEEP}}}\n", 4),
        ("channels.yaml", f"receivers: {DEEP}\n", 1),
        ("alerts/deep.yaml", f"rules:\n  - id: d\n    query: x\n    labels: {DEEP}\n", 4),
    ],
)
def test_yaml_nested_300_deep_in_any_file_is_an_error_not_a_traceback(
    rules: Path, name: str, text: str, line: int
) -> None:
    (rules / name).write_text(text, encoding="utf-8")
    code, doc = check_json(rules)
    assert code == 1
    (problem,) = doc["problems"]
    assert (problem["file"], problem["line"]) == (str(rules / name), line)
    assert problem["message"].startswith("the YAML is nested deeper than 50 levels here")

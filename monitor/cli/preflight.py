"""`monitor rules check`: every file under `rules/` checked at once, the way the service will
load it, so a mistake shows before a deploy rather than in the service's log.

The loaders of the four kinds of files each report in their own way (feeds.yaml and
channels.yaml stop at their first error, rule files collect them all); here each report
becomes a `Problem` (file, line, column, level, message). Errors fail the check, warnings
(what loads but is likely a mistake) do not. The rules' own `tests` examples run too, those of
disabled rules included, so turning a rule back on holds no surprise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from monitor.digest.channels import load_channels
from monitor.errors import ConfigError, MonitorError
from monitor.ingest.feeds import load_feeds
from monitor.match.examples import TestFailure, run_rule_tests
from monitor.match.regions import Gazetteer
from monitor.match.rule import Rule
from monitor.match.rules import load_rules, rule_files
from monitor.match.ruleset import RuleSet, load_tagger, rule_paths, user_gazetteer
from monitor.match.tagger import EntityTagger
from monitor.yamlfile.check import ConfigWarning

T = TypeVar("T")
Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding, placed in its file. `str()` is the human line: `error: file:3:5: ...`."""

    file: str
    line: int | None
    column: int | None
    level: Level
    message: str  # with the hint, if any, in parentheses
    tag: str = ""  # the human prefix when not the level: `fail` for a failing example

    @classmethod
    def of(cls, error: ConfigError) -> Problem:
        level: Level = "warning" if isinstance(error, ConfigWarning) else "error"
        return cls(error.path, error.line, error.column, level, MonitorError.__str__(error))

    def json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "level": self.level,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        return f"{self.tag or self.level}: {where}: {self.message}"


@dataclass
class Report:
    """Everything `rules check` found, and the rules it could read (disabled ones too)."""

    problems: list[Problem] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    examples: int = 0  # run, passing or not
    muted: list[Rule] = field(default_factory=list)  # muted as of the check's day

    def count(self, level: Level) -> int:
        return sum(p.level == level for p in self.problems)

    @property
    def failing(self) -> int:
        return sum(p.tag == "fail" for p in self.problems)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.count("error") == 0,
            "errors": self.count("error") - self.failing,
            "failing_examples": self.failing,
            "warnings": self.count("warning"),
            "rules": len(self.rules),
            "examples": self.examples,
            "disabled": [r.id for r in self.rules if not r.enabled],
            "muted": [{"rule": r.id, "until": str(r.mute_until)} for r in self.muted],
        }


def check_rules_dir(rules_dir: Path, today: date) -> Report:
    """Check feeds.yaml, regions.yaml, every rule file and channels.yaml under `rules_dir`,
    then run the rules' examples when the rules and regions loaded without error."""
    report = Report()
    keep(report, lambda: load_feeds(rules_dir / "feeds.yaml"))
    alerts, _, entities = rule_paths(rules_dir)
    gazetteer = keep(report, lambda: user_gazetteer(rules_dir))
    codes = gazetteer.codes if gazetteer is not None else None
    tagger = keep(report, lambda: load_tagger(entities, codes)) if codes is not None else None
    rules_ok = _check_rules(report, alerts, codes, tagger)
    # Rule ids are checked in routes only when every rule loaded: one left out for an error
    # would make each route naming it a second, misleading error.
    known_rules = {r.id for r in report.rules} if rules_ok else None
    keep(report, lambda: load_channels(rules_dir / "channels.yaml", known_rules, codes))
    if gazetteer is not None and rules_ok:
        _run_examples(report, gazetteer, tagger)
    _check_mutes(report, today)
    return report


def keep(report: Report, load: Callable[[], T]) -> T | None:
    """`load()`, or None with its error kept in the report."""
    try:
        return load()
    except ConfigError as error:
        report.problems.append(Problem.of(error))
        return None


def _check_rules(report: Report, alerts: Path, codes: Any, tagger: EntityTagger | None) -> bool:
    """Load every rule file; True when none had an error."""
    if not alerts.is_dir():
        return True  # no rules yet: nothing to check, nothing wrong
    skipped = rule_files(alerts)[1]
    ids = [e.id for e in tagger.entities] if tagger is not None else None
    rules, errors = load_rules(
        alerts, codes, include_disabled=True, log_skipped=False, known_entities=ids
    )
    report.problems += [Problem.of(e) for e in [*skipped, *errors]]
    report.rules = rules
    for rule in rules:
        for w in rule.warnings:
            message = f"{w.message} ({w.hint})" if w.hint else w.message
            report.problems.append(Problem(rule.path, w.line, w.column, "warning", message))
    return not errors


def _run_examples(report: Report, gazetteer: Gazetteer, tagger: EntityTagger | None) -> None:
    ruleset = RuleSet.compile(tuple(report.rules), gazetteer, tagger)
    report.examples = sum(len(r.match_examples) + len(r.no_match_examples) for r in report.rules)
    for failure in run_rule_tests(report.rules, ruleset.matcher, ruleset.tag, ruleset.tag_all):
        report.problems.append(_failed(failure))


def _failed(failure: TestFailure) -> Problem:
    line = failure.example.line or failure.rule.line
    message = str(failure).removeprefix(f"{failure.rule.path}:{line}: ")
    return Problem(failure.rule.path, line, None, "error", message, tag="fail")


def _check_mutes(report: Report, today: date) -> None:
    """List the rules muted today; a mute that has ended is a line to remove."""
    for rule in report.rules:
        if rule.mute_until is None:
            continue
        if rule.mute_until > today:
            report.muted.append(rule)
            continue
        message = f"rule {rule.id}: mute_until {rule.mute_until} has passed: it delivers again"
        hint = "remove the mute_until line"
        report.problems.append(
            Problem(rule.path, rule.line, None, "warning", f"{message} ({hint})")
        )

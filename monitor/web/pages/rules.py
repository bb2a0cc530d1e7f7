"""The console's rules page (`/rules`: each rule in force, what it matched this week) and the
rule playground (`/rules/playground`: try a query or a rule on stored items, beside a rule in
force). Both only read: the playground never writes a rule file, it shows the YAML to paste.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.errors import ConfigError, ConfigErrors, MonitorError
from monitor.ingest.feeds import load_feeds
from monitor.match.rule import Rule
from monitor.match.rules import load_rules
from monitor.match.ruleset import RuleSet
from monitor.models import SEVERITIES, Feed
from monitor.store.web_rules import RuleActivity, rule_activity
from monitor.web.playground import Parsed, read_input, rule_source
from monitor.web.playground_run import MAX_DAYS, Trial, run_trial
from monitor.web.render import page
from monitor.web.state import Console, console

WEEK = 7  # days drawn per rule
SORTS = ("file", "id", "title", "severity", "week", "last")
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    file: str  # relative to the rules folder's parent: rules/alerts/x.yaml
    days: list[tuple[date, int]]  # the last WEEK UTC days, oldest first
    week: int
    last: datetime | None


def _loaded(state: Console) -> tuple[RuleSet | None, list[Rule], list[ConfigError]]:
    """The rules in force, or (when a file under rules/ does not load) the rules that do,
    read leniently, and every error."""
    try:
        ruleset = state.ruleset()
    except ConfigErrors as errors:
        failed = errors.errors
    except ConfigError as error:
        failed = [error]
    else:
        return ruleset, list(ruleset.rules), []
    rules, _ = load_rules(state.config.rules_dir / "alerts", log_skipped=False)
    return None, rules, failed


def _relative(path: str, rules_dir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(rules_dir.resolve().parent))
    except ValueError:
        return path


def _rows(state: Console, rules: list[Rule], now: datetime) -> list[RuleRow]:
    first = now.date() - timedelta(days=WEEK - 1)
    since = datetime.combine(first, time(), UTC)
    activity = rule_activity(state.store, [r.id for r in rules], since)
    days = [first + timedelta(days=n) for n in range(WEEK)]
    rows = []
    for rule in rules:
        seen = activity.get(rule.id, RuleActivity({}, None))
        counts = [(day, seen.per_day.get(day, 0)) for day in days]
        file = _relative(rule.path, state.config.rules_dir)
        rows.append(RuleRow(rule, file, counts, sum(n for _, n in counts), seen.last))
    return rows


_EPOCH = datetime.min.replace(tzinfo=UTC)
_RANK = {severity: n for n, severity in enumerate(SEVERITIES)}


def _sorted(rows: list[RuleRow], key: str) -> list[RuleRow]:
    """Rows by `key`: as in the files, by id or title, the most severe, busiest or most
    recently matching first."""
    if key == "id":
        return sorted(rows, key=lambda r: r.rule.id)
    if key == "title":
        return sorted(rows, key=lambda r: (r.rule.title.casefold(), r.rule.id))
    if key == "severity":
        return sorted(rows, key=lambda r: (-_RANK.get(r.rule.severity, 0), r.rule.id))
    if key == "week":
        return sorted(rows, key=lambda r: (-r.week, r.rule.id))
    if key == "last":
        return sorted(rows, key=lambda r: (r.last or _EPOCH, r.rule.id), reverse=True)
    return rows  # "file": the order the rules load in (file names, then position)


def rules_page(request: Request) -> Response:
    state = console(request)
    _, rules, errors = _loaded(state)
    now = datetime.now(UTC)
    sort = request.query_params.get("sort", "file")
    sort = sort if sort in SORTS else "file"
    rows = _sorted(_rows(state, rules, now), sort)
    peak = max((n for row in rows for _, n in row.days), default=0)
    return page(
        request,
        "rules.html",
        active="rules",
        rows=rows,
        sort=sort,
        sorts=SORTS,
        errors=[(_relative(e.path, state.config.rules_dir), e) for e in errors],
        peak=max(peak, 1),
        now=now,
    )


# --- the playground ------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    text: str
    days: int
    compare: str  # a rule id, or "" for none
    problems: tuple[str, ...]  # about the form itself (days, an unknown rule)


def _form(request: Request, rules: dict[str, Rule], rules_dir: Path) -> Form:
    params = request.query_params
    problems = []
    text = params.get("text")
    compare = params.get("compare")
    prefill = params.get("rule")  # the "try" link of the rules page
    if prefill:
        if prefill in rules:
            text = rule_source(rules[prefill], rules_dir) if text is None else text
            compare = prefill if compare is None else compare
        else:
            problems.append(f"no rule {prefill!r} is in force: see the rules page")
    if compare and compare not in rules:
        problems.append(f"no rule {compare!r} is in force to compare with")
        compare = ""
    raw_days = (params.get("days") or str(DEFAULT_DAYS)).strip()
    days = int(raw_days) if raw_days.isdigit() else 0
    if not 1 <= days <= MAX_DAYS:
        problems.append(f"days must be a whole number from 1 to {MAX_DAYS}: using {DEFAULT_DAYS}")
        days = DEFAULT_DAYS
    return Form(text or "", days, compare or "", tuple(problems))


def _feeds(rules_dir: Path) -> tuple[dict[str, Feed], str | None]:
    """The feeds of rules/feeds.yaml (feed scopes need them), or a note why there are none."""
    try:
        return {f.id: f for f in load_feeds(rules_dir / "feeds.yaml").feeds}, None
    except MonitorError as error:
        return {}, f"{error}: feed: and tag: scopes are tried without the feeds' tags"


def _context(request: Request) -> dict[str, Any]:
    state = console(request)
    ruleset, rules, errors = _loaded(state)
    by_id = {r.id: r for r in rules}
    form = _form(request, by_id, state.config.rules_dir)
    in_force = by_id.get(form.compare)
    parsed: Parsed = read_input(form.text, ruleset, like=in_force)
    notes = list(form.problems)
    trial: Trial | None = None
    if parsed.rule is not None or (parsed.kind == "empty" and in_force is not None):
        feeds, note = _feeds(state.config.rules_dir)
        notes += [note] if note else []
        trial = run_trial(
            state.store, parsed.rule, in_force, form.days,
            ruleset=ruleset, feeds=feeds, now=datetime.now(UTC),
        )  # fmt: skip
    if errors:
        notes.append(
            f"{len(errors)} error(s) in the rule files: regions and entities are not checked"
            " (see the rules page)"
        )
    return {
        "form": form,
        "rules": rules,
        "in_force": in_force,
        "parsed": parsed,
        "trial": trial,
        "notes": notes,
    }


def playground_page(request: Request) -> Response:
    return page(request, "playground.html", active="rules", **_context(request))


def playground_check(request: Request) -> Response:
    """The result part alone, for htmx as one types; the same as the whole page's."""
    return page(request, "playground_result.html", active="rules", **_context(request))


ROUTES: list[BaseRoute] = [
    Route("/rules", rules_page, methods=["GET"]),
    Route("/rules/playground", playground_page, methods=["GET"]),
    Route("/rules/playground/check", playground_check, methods=["GET"]),
]

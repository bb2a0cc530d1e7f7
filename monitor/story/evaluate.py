"""The linker as a grouping the stories benchmark can score (`benchmarks/stories.py`).

    python -m benchmarks.stories --cluster monitor.story.evaluate:cluster

Each evaluation report becomes an `Item`, is tagged and matched with the default rules the
way ingest does (`rules/` of the working directory, else the rule pack installed with
monitor), and goes to a `Linker` in published order, as a poll would store them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol

from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import Item
from monitor.story.linker import Linker, Report, report_of


class EvalReport(Protocol):
    """The benchmark's report: everything but the answer."""

    @property
    def id(self) -> str: ...
    @property
    def outlet(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def published(self) -> datetime: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def link(self) -> str: ...


@cache
def default_rules() -> RuleSet:
    """The default rule pack: `rules/` here when it has alert rules, else the installed one."""
    here = Path("rules")
    if (here / "alerts").is_dir():
        return load_ruleset(here)
    with resources.as_file(resources.files("monitor").joinpath("data/rules")) as path:
        return load_ruleset(Path(path))


def linker_report(number: int, report: EvalReport, rules: RuleSet) -> Report:
    """`report` as ingest would hand it to the linker: tagged, matched, numbered."""
    digest = hashlib.sha256(f"{report.title}\n{report.summary}".encode()).hexdigest()
    item = Item(
        feed_id=report.outlet,
        guid=report.id,
        link=report.link,
        title=report.title,
        summary=report.summary,
        html=report.summary,
        author=None,
        lang=report.lang,
        published=report.published,
        first_seen=report.published,
        content_hash=digest,
    )
    tagged, matches = rules.enrich(item, None)
    return report_of(number, tagged, [m.rule_id for m in matches])


def cluster(reports: Sequence[EvalReport]) -> list[list[str]]:
    """Groups of report ids, as the linker forms stories over `reports` in published order."""
    return link(reports, Linker())


def link(reports: Sequence[EvalReport], linker: Linker) -> list[list[str]]:
    ordered = sorted(reports, key=lambda r: (r.published, r.id))
    rules = default_rules()
    groups: dict[int, list[str]] = {}
    for number, report in enumerate(ordered, start=1):
        linked = linker_report(number, report, rules)
        story = linker.decide(linked).story
        if story is None:
            story = number  # the first report's number: a stable story id
        linker.add(story, linked)
        groups.setdefault(story, []).append(report.id)
    return list(groups.values())

"""Why a listing found nothing, when one of its filters names something that does not exist.

`monitor stories --region TAIWAN` or `items search --rule korea-missile` used to answer "no
stories found", which reads as "no news": for this service the worst answer a typo can get.
When a search finds nothing, each filter is looked up where its names live (the region
gazetteer, the alert rules, the entities, feeds.yaml, all with the user's files under
`rules/`) and one that names nothing known is said, with the closest name when there is one.
Only then: a search that finds something never pays for loading them. A file that cannot be
read gives no hint (the search itself never needed it). The console's stories and search
pages say the same under their empty lists.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Protocol

from monitor.errors import MonitorError


def unknown_filters(
    rules_dir: Path,
    *,
    region: str | None = None,
    rule_id: str | None = None,
    entity: str | None = None,
    feed_id: str | None = None,
) -> tuple[str, ...]:
    """What a search that found nothing says about the filters given that name nothing
    known, one phrase each (empty: they all exist), with the user's files under `rules_dir`:
    `no region has the code 'taiwan' (did you mean TW?)`."""
    checks: list[tuple[str | None, Callable[[str, Path], str | None]]] = [
        (region, _region),
        (rule_id, _rule),
        (entity, _entity),
        (feed_id, _feed),
    ]
    found = (_safely(check, value, rules_dir) for value, check in checks if value)
    return tuple(reason for reason in found if reason)


def nothing_found(what: str, reasons: tuple[str, ...], as_json: bool) -> list[str]:
    """The lines a command prints on standard error when it found no `what`: a line per
    reason, else (not with --json) that nothing was found."""
    if reasons:
        return [f"no {what} found: {reason}" for reason in reasons]
    return [] if as_json else [f"no {what} found"]


class Filtered(Protocol):
    """A console form's filters (the stories page's and the search page's): "" or None for
    one not given."""

    @property
    def region(self) -> str | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def entity(self) -> str | None: ...
    @property
    def feed(self) -> str | None: ...


def unknown_sentences(rules_dir: Path, form: Filtered) -> list[str]:
    """`unknown_filters` of a console form, as the console writes them, sentences: `No region
    has the code 'x'.`"""
    reasons = unknown_filters(
        rules_dir,
        region=form.region or None,
        rule_id=form.rule or None,
        entity=form.entity or None,
        feed_id=form.feed or None,
    )
    return [f"{r[:1].upper()}{r[1:]}." for r in reasons]


def _safely(check: Callable[[str, Path], str | None], value: str, rules_dir: Path) -> str | None:
    try:
        return check(value, rules_dir)
    except (MonitorError, OSError):
        return None


def _region(code: str, rules_dir: Path) -> str | None:
    from monitor.match.ruleset import user_gazetteer
    from monitor.match.textnorm import fold

    gazetteer = user_gazetteer(rules_dir)
    if code.upper() in gazetteer.codes:
        return None
    # A name written for a code (`--region taiwan`): the gazetteer knows which code it is.
    named = {c for i in gazetteer.indices(fold(code)) for c in gazetteer.aliases[i].codes}
    guess = sorted(named) or _closest(code.upper(), gazetteer.codes)
    return f"no region has the code {code!r}{_did_you_mean(guess)}"


def _rule(rule_id: str, rules_dir: Path) -> str | None:
    from monitor.match.rules import load_rules
    from monitor.match.ruleset import rule_paths

    alerts = rule_paths(rules_dir)[0]
    rules, _ = load_rules(alerts, include_disabled=True, log_skipped=False)
    ids = {r.id for r in rules}
    if not ids or rule_id in ids:
        return None  # no rules to compare with (a broken file): the stored matches decide
    return f"no rule has the id {rule_id!r} in {alerts}{_did_you_mean(_closest(rule_id, ids))}"


def _entity(entity: str, rules_dir: Path) -> str | None:
    from monitor.match.ruleset import load_tagger, rule_paths, user_gazetteer

    codes = user_gazetteer(rules_dir).codes
    ids = {e.id for e in load_tagger(rule_paths(rules_dir)[2], codes).entities}
    if entity.lower() in ids:
        return None
    return f"no entity has the id {entity!r}{_did_you_mean(_closest(entity.lower(), ids))}"


def _feed(feed_id: str, rules_dir: Path) -> str | None:
    from monitor.ingest.feeds import load_feeds

    feeds = rules_dir / "feeds.yaml"
    ids = {f.id for f in load_feeds(feeds).feeds}
    if feed_id in ids:
        return None
    return f"no feed has the id {feed_id!r} in {feeds}{_did_you_mean(_closest(feed_id, ids))}"


def _closest(name: str, known: Collection[str]) -> list[str]:
    """The known name most like `name`: by spelling, else one holding it or held in it
    (`dprk` for `dprk-missiles`)."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    if close:
        return close
    # Four characters at least: `NO` (Norway) is in `NORTH`, by chance.
    holding = [k for k in known if min(len(k), len(name)) >= 4 and (k in name or name in k)]
    return sorted(holding, key=lambda k: (abs(len(k) - len(name)), k))[:1]


def _did_you_mean(names: Iterable[str]) -> str:
    listed = " or ".join(names)
    return f" (did you mean {listed}?)" if listed else ""

"""The console's stories page (`/`) and one story (`/stories/{id}`).

The list is what `monitor stories` shows, read with the same library (`cli.stories.story_views`
for each story's headline, rules and growth), with more filters and the stories that surged in
the last day on top. Pages of 50 (`page=2`...). With a rule or a region chosen, a chart of the
matches per hour over the last week sits above the list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.cli.hints import unknown_sentences
from monitor.cli.stories import StoryView, joined_because, story_views
from monitor.digest.render.common import safe_link
from monitor.errors import MonitorError
from monitor.match.entities import load_entities
from monitor.match.rule import Rule
from monitor.models import SEVERITIES
from monitor.store import Store
from monitor.store.web_stories import (
    StoryFilter,
    feed_ids,
    find_page,
    hourly_matches,
    surging_stories,
    volume_surges,
)
from monitor.web.chart import Chart, build_chart, chart_start
from monitor.web.render import page
from monitor.web.state import Console, console

SINCE = {
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "2d": timedelta(days=2),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
DEFAULT_SINCE = "7d"
PAGE_SIZE = 50
SURGING = timedelta(days=1)  # a story surge this recent puts the story on top
FIELDS = ("rule", "region", "entity", "severity", "language", "feed", "since")


@dataclass(frozen=True)
class Filters:
    """The filters as the form sent them (empty fields absent), and the page number."""

    rule: str | None = None
    region: str | None = None
    entity: str | None = None
    severity: str | None = None
    language: str | None = None
    feed: str | None = None
    since: str = DEFAULT_SINCE
    page: int = 1

    def link(self, **changes: object) -> str:
        """This page's address with some filters changed (the pager's links)."""
        values = vars(replace(self, **changes))  # type: ignore[arg-type]
        pairs = [(k, str(v)) for k, v in values.items() if v not in (None, "") and v != 1]
        return "/?" + urlencode([(k, v) for k, v in pairs if (k, v) != ("since", DEFAULT_SINCE)])


@dataclass(frozen=True)
class Row:
    """A story as the list shows it."""

    view: StoryView
    severity: str | None  # the highest of its rules' severities
    surge: str | None  # why it surged in the last day


def parse_filters(params: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """The filters, and what was wrong with them (each wrong one is left out)."""
    given = {f: params.get(f, "").strip() or None for f in FIELDS}
    problems = []
    since = given.pop("since") or DEFAULT_SINCE
    if since not in SINCE:
        problems.append(f"unknown time {since!r}: choose one of {', '.join(SINCE)}")
        since = DEFAULT_SINCE
    if given["severity"] is not None and given["severity"] not in SEVERITIES:
        problems.append(
            f"unknown severity {given['severity']!r}: choose one of {', '.join(SEVERITIES)}"
        )
        given["severity"] = None
    number = params.get("page", "1").strip() or "1"
    if not number.isdigit() or int(number) < 1:
        problems.append(f"page {number!r} is not a page number: pages count from 1")
        number = "1"
    return Filters(**given, since=since, page=int(number)), problems


def story_filter(filters: Filters, rules: Sequence[Rule], now: datetime) -> StoryFilter:
    span = SINCE[filters.since]
    wanted: tuple[str, ...] | None = None
    if filters.severity is not None:  # at least this severity: the rules that have it
        floor = SEVERITIES.index(filters.severity)
        wanted = tuple(r.id for r in rules if SEVERITIES.index(r.severity) >= floor)
    if filters.rule is not None:
        wanted = (filters.rule,) if wanted is None or filters.rule in wanted else ()
    return StoryFilter(
        since=None if span is None else now - span,
        rules=wanted,
        region=filters.region,
        entity=filters.entity,
        language=filters.language,
        feed=filters.feed,
    )


def severity_of(view: StoryView, severities: Mapping[str, str]) -> str | None:
    known = [severities[r] for r in view.rules if r in severities]
    return max(known, key=SEVERITIES.index) if known else None


def _rows(
    store: Store, rules: Sequence[Rule], filters: Filters, now: datetime
) -> tuple[list[Row], bool]:
    """The page's stories and whether another page follows."""
    surging = surging_stories(store, now - SURGING)
    offset = (filters.page - 1) * PAGE_SIZE
    found = find_page(store, story_filter(filters, rules, now), surging, offset, PAGE_SIZE + 1)
    severities = {r.id: r.severity for r in rules}
    views = story_views(store, found[:PAGE_SIZE], now)
    rows = [Row(v, severity_of(v, severities), surging.get(v.row.id)) for v in views]
    return rows, len(found) > PAGE_SIZE


def _chart(store: Store, filters: Filters, now: datetime) -> Chart | None:
    if filters.rule is None and filters.region is None:
        return None
    start = chart_start(now)
    counts = hourly_matches(store, start, rule=filters.rule, region=filters.region)
    keys = [f"rule:{filters.rule}"] if filters.rule else []
    keys += [f"region:{filters.region.upper()}"] if filters.region else []
    subject = " and ".join(k.replace(":", " ") for k in keys)
    return build_chart(subject, counts, volume_surges(store, start, keys), now)


def stories_page(request: Request) -> Response:
    state = console(request)
    filters, problems = parse_filters(request.query_params)
    rules, codes, broken = _rules(state)
    now = datetime.now(UTC)
    rows, more = _rows(state.store, rules, filters, now)
    empty = not rows and filters.page == 1  # nothing listed: is a filter a typo?
    context = {
        "unknown": unknown_sentences(state.config.rules_dir, filters) if empty else [],
        "filters": filters,
        "problems": problems,
        "broken": broken,
        "rows": rows,
        "more": more,
        "chart": _chart(state.store, filters, now),
        "names": _entity_names(),
    }
    status = 400 if problems else 200
    if request.headers.get("hx-request") == "true":
        return page(request, "stories_results.html", status, **context)
    return page(
        request,
        "stories.html",
        status,
        active="stories",
        rules=sorted(rules, key=lambda r: r.id),
        since_choices=list(SINCE),
        severities=SEVERITIES,
        regions=codes,
        feeds=feed_ids(state.store),
        **context,
    )


def story_page(request: Request) -> Response:
    story_id: int = request.path_params["story_id"]
    state = console(request)
    store = state.store
    row = store.get_story(story_id)
    if row is None:
        into = store.merged_into(story_id)
        if into is not None:  # its reports live there now
            return RedirectResponse(f"/stories/{into}", status_code=302)
        raise HTTPException(404, f"No story {story_id}: it never existed or all its reports "
                            "were removed. Find stories on the Stories page.")  # fmt: skip
    now = datetime.now(UTC)
    rules = {r.id: r for r in _rules(state)[0]}
    view = story_views(store, [row], now)[0]
    surge = surging_stories(store, now - SURGING).get(story_id)
    return page(
        request,
        "story.html",
        active="stories",
        view=view,
        severity=severity_of(view, {k: r.severity for k, r in rules.items()}),
        surge=surge,
        # Only an http(s) link becomes an href: a feed may write `javascript:` there.
        links=[
            (x, joined_because(x), safe_link(x.stored.item.link))
            for x in store.story_links(story_id)
        ],
        rules=rules,
        names=_entity_names(),
    )


def _rules(state: Console) -> tuple[Sequence[Rule], list[str], str | None]:
    """The rules in force and the region codes; when a file under rules/ does not load (an
    edit in progress), none, and why: the stories are still worth reading meanwhile."""
    try:
        ruleset = state.ruleset()
    except MonitorError as error:
        return (), [], f"The rules do not load, so severities and rules are left out: {error}"
    return ruleset.rules, sorted(ruleset.gazetteer.codes), None


def _entity_names() -> dict[str, str]:
    return {entity.id: entity.name for entity in load_entities()}


ROUTES: list[BaseRoute] = [
    Route("/", stories_page, methods=["GET"]),
    Route("/stories/{story_id:int}", story_page, methods=["GET"]),
]

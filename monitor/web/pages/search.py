"""The console's search page, `GET /search`, and the item page, `GET /items/{id}` (item.py).

A search is `monitor items search` in a form: the same query language, parsed by the same
parser, run by the same `Store.search` with the same filters (since, feed, region, entity,
rule, story, limit), newest first. Hits are found in each result by the rule engine
(`marks.SearchHits`) and marked by the template. A query that does not parse is shown with a
caret under the problem instead of results; so is any other bad filter, in one line.

Cost per request: the search itself (the store picks its plan by how common the words are,
see `Store.search`), then two queries for the results' rules and stories, whatever their
number; the hits are found in the shown results only (a few dozen short texts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.cli.hints import unknown_sentences
from monitor.errors import ConfigError, MonitorError
from monitor.ingest.feeds import load_feeds
from monitor.match.lexer import QuerySyntaxError, query_warnings, render_caret
from monitor.match.nodes import Node, Tag, walk
from monitor.match.query import parse_query
from monitor.models import StoredItem
from monitor.store import Store
from monitor.web.marks import Piece, SearchHits, clipped, field_pieces
from monitor.web.pages.item import item_page, known_feeds
from monitor.web.render import page
from monitor.web.state import Console, console
from monitor.yamlfile.duration import parse_duration

DEFAULT_LIMIT = 20  # as `monitor items search`
MAX_LIMIT = 200  # a longer page is no longer read, and would miss the 200 ms answer
SUMMARY_WIDTH = 320  # characters of a summary shown in a result, around its first hit


@dataclass(frozen=True)
class SearchForm:
    """The form's fields as typed (strings: they are written back into the form)."""

    q: str = ""
    since: str = ""
    feed: str = ""
    region: str = ""
    entity: str = ""
    rule: str = ""
    story: str = ""
    limit: str = ""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> SearchForm:
        return cls(**{f.name: params.get(f.name, "").strip() for f in fields(cls)})

    def filtered(self) -> bool:
        """Whether anything narrows the search (else: the newest items)."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "limit")

    def more(self, limit: int) -> str:
        """The query string of this search showing `limit` results."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["limit"] = str(limit)
        return urlencode({k: v for k, v in values.items() if v})

    def link(self) -> str:
        """This search's address without its empty fields (a form sends them all)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        query = urlencode({k: v for k, v in values.items() if v})
        return f"/search?{query}" if query else "/search"


@dataclass(frozen=True)
class Problem:
    """Why there are no results: one line, what to do, and the query with a caret."""

    message: str
    hint: str | None = None
    caret: str | None = None


@dataclass(frozen=True)
class Result:
    stored: StoredItem
    title: list[Piece]
    summary: list[Piece]
    rules: list[str]
    story: int | None


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    problem: Problem | None = None
    limit: int = DEFAULT_LIMIT
    warnings: list[Problem] = field(default_factory=list)  # parses, but likely a slip


def search_page(request: Request) -> Response:
    state, form = console(request), SearchForm.of(request.query_params)
    outcome = run_search(state, form)
    rules_dir = state.config.rules_dir
    feeds = known_feeds(rules_dir)
    # htmx swaps the results in while typing; a history restore wants the whole page.
    fragment = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(
        request,
        "search_results.html" if fragment else "search.html",
        active="search",
        form=form,
        outcome=outcome,
        feed_titles={f.id: f.title for f in feeds},
        more=_more(form, outcome),
        rule_ids=[] if fragment else _rule_ids(state),
        feed_ids=[f.id for f in feeds],
        unknown=[] if outcome.results or outcome.problem else unknown_sentences(rules_dir, form),
    )
    if fragment:  # the address htmx puts in the location bar: no empty `&feed=&region=`
        response.headers["hx-push-url"] = form.link()
    return response


def _rule_ids(state: Console) -> list[str]:
    """The rules in force, offered in the Rule field; none while a rule file is broken (the
    Rules page says why): a search needs no rule file."""
    try:
        return [rule.id for rule in state.ruleset().rules]
    except MonitorError:
        return []


def _more(form: SearchForm, outcome: Outcome) -> str | None:
    """The link to twice as many results, when the page is full and may grow."""
    if len(outcome.results) < outcome.limit or outcome.limit >= MAX_LIMIT:
        return None
    return form.more(min(2 * outcome.limit, MAX_LIMIT))


def run_search(state: Console, form: SearchForm) -> Outcome:
    try:
        limit = _limit(form.limit)
        since = _since(form.since)
        story = _story(state.store, form.story)
        tree = _tree(form.q)
        found = state.store.search(
            form.q or None,
            since=since,
            feed_id=form.feed or None,
            region=form.region or None,
            rule_id=form.rule or None,
            limit=limit,
            tag_feeds=_tag_feeds(state, tree),
            entity=form.entity.lower() or None,
            story=story,
        )
    except QuerySyntaxError as error:
        caret = render_caret(error.query, error.column, indent="")
        message = f"column {error.column}: {error.message}"
        return Outcome(problem=Problem(message, error.hint, caret))
    except ConfigError as error:  # feeds.yaml, for a `tag:`: its own file:line message
        return Outcome(problem=Problem(str(error)))
    except MonitorError as error:
        return Outcome(problem=Problem(error.message, error.hint))
    return Outcome(_results(state.store, found, tree), limit=limit, warnings=_warnings(form.q))


def _warnings(query: str) -> list[Problem]:
    """What `rules check` warns of in a rule's query: a lower-case `or` is searched as a word."""
    if not query.strip():
        return []
    return [
        Problem(w.message, w.hint, render_caret(query, w.column, indent=""))
        for w in query_warnings(query)
    ]


def _results(store: Store, found: list[StoredItem], tree: Node | None) -> list[Result]:
    ids = [s.id for s in found]
    rules, stories = store.matched_rules(ids), store.item_stories(ids)
    hits = SearchHits(tree)
    out = []
    for stored in found:
        item, item_hits = stored.item, hits.of(stored.item)
        summary = clipped(field_pieces(item.summary, item_hits, "summary"), SUMMARY_WIDTH)
        title = field_pieces(item.title, item_hits, "title")
        out.append(Result(stored, title, summary, rules.get(stored.id, []), stories.get(stored.id)))
    return out


def _tree(query: str) -> Node | None:
    """The parsed query (None when blank), as `Store.search` parses it: raises the parser's
    own error, which knows the column, so the page can put a caret under it."""
    return parse_query(query.replace("\x00", " ")) if query.strip() else None


def _limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise MonitorError(
            f"limit {text!r} is not a number of results",
            hint=f"give a whole number from 1 to {MAX_LIMIT}",
        )
    return int(text)


def _since(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError as error:
        raise MonitorError(f"since: {error}", hint="e.g. 12h, 2d or 4w") from None


def _story(store: Store, text: str) -> int | None:
    """The story id, checked as `items search --story` checks it."""
    if not text:
        return None
    if not text.isdigit():
        raise MonitorError(f"story {text!r} is not a story id", hint="story ids are numbers")
    story = int(text)
    if store.get_story(story) is not None:
        return story
    into = store.merged_into(story)
    if into is not None:
        hint = f"use {into}: a merged story's reports are all there"
        raise MonitorError(f"story {story} was merged into story {into}", hint=hint)
    raise MonitorError(f"no story with id {story}", hint="find stories on the Stories page")


def _tag_feeds(state: Console, tree: Node | None) -> dict[str, list[str]] | None:
    """Tag -> feed ids from feeds.yaml, for a query with `tag:` (tags live there only). Read
    as the CLI reads it: a broken file is an error here, not a search that finds nothing."""
    if tree is None or not any(isinstance(node, Tag) for node in walk(tree)):
        return None
    out: dict[str, list[str]] = {}
    for feed in load_feeds(state.config.rules_dir / "feeds.yaml").feeds:
        for tag in feed.tags:
            out.setdefault(tag, []).append(feed.id)
    return out


ROUTES: list[BaseRoute] = [
    Route("/search", search_page, methods=["GET"]),
    Route("/items/{item_id:int}", item_page, methods=["GET"]),
]

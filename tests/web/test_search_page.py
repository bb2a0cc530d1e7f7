"""The console's search page (`/search`) and item page (`/items/{id}`) on a copy of the demo's
database, through the real app; compared with `monitor items search` / `items show` run on
the same files.
Expected: the page finds exactly what the CLI finds (same query language, same filters),
marks the query's words in what it shows, and shows a caret under a query that does not
parse; the item page tells what `items show` tells; feed text is always text.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.html
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from monitor.cli.main import main
from monitor.ingest.feeds import load_feeds
from monitor.match.nodes import Phrase, Term
from monitor.match.query import QuerySyntaxError, parse_query
from monitor.match.ruleset import load_ruleset
from monitor.match.textnorm import fold
from monitor.models import FeedState, Item
from monitor.store import Store
from monitor.web.marks import Piece, clipped, pieces, positive_words
from monitor.web.pages.search import MAX_LIMIT, Outcome, SearchForm, _more
from tests.web.conftest import DemoState, make_client, on_both

HtmlElement = lxml.html.HtmlElement
_STEP = re.compile(r"([a-z0-9]*)((?:[#.][\w-]+|\[[\w-]+=[^\]]+\])*)")


def xpath_of(css: str) -> str:
    """The XPath of a CSS selector of the few forms these tests use (tags, #id, .class,
    [attr=value], descendant and `>` child combinators, commas)."""
    alternatives = []
    for alternative in css.split(","):
        path, axis = ".", "//"
        for token in re.findall(r">|[^\s>]+", alternative):
            if token == ">":
                axis = "/"
                continue
            found = _STEP.fullmatch(token)
            assert found is not None, f"unsupported selector {token!r}"
            tag, rest = found.group(1) or "*", found.group(2)
            tests = [f"@id='{v}'" for v in re.findall(r"#([\w-]+)", rest)]
            tests += [
                f"contains(concat(' ', normalize-space(@class), ' '), ' {v} ')"
                for v in re.findall(r"\.([\w-]+)", rest)
            ]
            tests += [f"@{a}='{v}'" for a, v in re.findall(r"\[([\w-]+)=([^\]]+)\]", rest)]
            path += axis + tag + "".join(f"[{t}]" for t in tests)
            axis = "//"
        alternatives.append(path)
    return " | ".join(alternatives)


def sel(element: HtmlElement, css: str) -> list[HtmlElement]:
    """`element.cssselect(css)`, without needing the cssselect package."""
    found: list[HtmlElement] = element.xpath(xpath_of(css))
    return found


def cli(state: DemoState, *args: str) -> str:
    argv = ["--rules", str(state.rules), "--db", str(state.db), "items", *args]
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def cli_ids(state: DemoState, query: str, *options: str) -> list[int]:
    words = [query] if query else []
    out = cli(state, "search", *words, "--json", *options)
    return [json.loads(line)["id"] for line in out.splitlines() if line.strip()]


def get(client: TestClient, path: str, **params: str) -> HtmlElement:
    response = client.get(path, params=params or None)  # an empty dict drops the URL's own
    assert response.status_code == 200, response.text
    return lxml.html.fromstring(response.text)


def result_ids(doc: HtmlElement) -> list[int]:
    return [int(li.get("data-item-id")) for li in sel(doc, "#search-list > li")]


def add_item(state: DemoState, guid: str, title: str, summary: str = "", **kw: Any) -> int:
    """Store one item through the real ingest path (tagged and matched by the demo's rules)."""
    ruleset = load_ruleset(state.rules)
    now = datetime.now(UTC)
    item = Item(
        "test-wire", guid, kw.get("link"), title, summary, summary, None, kw.get("lang", "en"),
        now, now, f"{title}|{summary}",
    )  # fmt: skip
    history = now + timedelta(days=1) if kw.get("history") else None
    with Store(state.db) as store:
        store.save_items(
            "test-wire",
            [item],
            FeedState("test-wire", "https://test-wire.example/feed"),
            lambda i: ruleset.enrich(i, None),
            history_before=history,
        )
        return store.search(None, feed_id="test-wire", limit=100)[0].id


QUERIES = [
    ("taiwan", ()),
    ("台湾", ()),
    ('"coast guard" OR 북한', ()),
    ("missile* -film", ()),
    ("region:KP", ()),
    ("tag:english china", ()),
    ("", ("--region", "TW")),
    ("china", ("--rule", "south-china-sea")),
    ("", ("--entity", "cn-coast-guard")),
    ("", ("--feed", "toto-shimpo", "--since", "3650d", "--limit", "5")),
]


@on_both
@pytest.mark.parametrize(("query", "options"), QUERIES)
def test_the_page_finds_what_items_search_finds(
    client: TestClient, console_state: DemoState, query: str, options: tuple[str, ...]
) -> None:
    expected = cli_ids(console_state, query, *options)
    assert expected, "a query that finds nothing would prove little"
    params = {"q": query} | {
        opt[2:]: value for opt, value in zip(options[::2], options[1::2], strict=True)
    }
    assert result_ids(get(client, "/search", **params)) == expected


# Queries whose words the demo's items hold in all four languages, with every operator.
BOTH_WAYS = [
    "taiwan", "台湾 OR 臺灣", "북한", "ミサイル", '"coast guard"', "missile* -film",
    "china NEAR/5 sea", "title:(taiwan OR 台湾)", "summary:korea region:KP", "lang:zh 海",
    "coast NOT guard", 'AT&T OR "x:y" OR it\'s OR (a|b)',
]  # fmt: skip


def test_the_page_on_postgresql_shows_what_it_shows_on_sqlite(
    console_state: DemoState, pg_demo: Any
) -> None:
    """The demo's rows in both backends (the same ids): each search lists the same items."""
    on_pg = DemoState(db=pg_demo(), rules=console_state.rules)
    with make_client(console_state) as lite, make_client(on_pg) as pg:
        found = 0
        for query in BOTH_WAYS:
            expected = result_ids(get(lite, "/search", q=query, limit="200"))
            assert result_ids(get(pg, "/search", q=query, limit="200")) == expected, query
            found += bool(expected)
    assert found >= len(BOTH_WAYS) - 2  # equal lists prove little if they are empty


def test_hits_are_marked_in_title_and_summary(client: TestClient) -> None:
    doc = get(client, "/search", q="台湾 OR missile*")
    results = sel(doc, "#search-list > li")
    assert results
    for li in results:
        marks = [fold(m.text_content()) for m in sel(li, "h2 mark, .result-summary mark")]
        assert marks, lxml.html.tostring(li, encoding="unicode")
        assert all(m == "台湾" or m.startswith("missile") for m in marks)
    # the marks cover the words wherever they are: in a title and in a summary
    assert sel(doc, "h2.result-title mark") and sel(doc, ".result-summary mark")
    # a word under NOT is no hit, nor is a scope
    assert not sel(get(client, "/search", q="region:KP"), "mark")
    negated = get(client, "/search", q="taiwan -china")
    assert all(fold(m.text_content()) == "taiwan" for m in sel(negated, "mark"))


def test_feed_text_is_shown_as_text_and_only_hits_are_marked(
    client: TestClient, console_state: DemoState
) -> None:
    title = "<script>alert(1)</script> Taiwan <b>strait</b> & more"
    item_id = add_item(console_state, "x1", title, "<img src=x onerror=alert(2)> taiwan")
    doc = get(client, "/search", q="taiwan", feed="test-wire")
    assert result_ids(doc) == [item_id]
    li = sel(doc, "#search-list > li")[0]
    assert sel(li, "h2 a")[0].text_content() == title
    assert not sel(li, "script, b, img")
    assert [m.text_content() for m in sel(li, "mark")] == ["Taiwan", "taiwan"]
    page = get(client, f"/items/{item_id}")
    assert sel(page, "#item-title")[0].text_content() == title
    assert not sel(page, "main script, main b, main img")


def test_a_query_that_does_not_parse_shows_its_caret(client: TestClient) -> None:
    query = "taiwan AND (drill* OR"
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    doc = get(client, "/search", q=query)
    assert not sel(doc, "#search-list")
    [error] = sel(doc, "#search-error")
    assert f"column {raised.value.column}" in sel(error, ".error")[0].text_content()
    line, caret = sel(doc, "#search-caret")[0].text_content().splitlines()
    assert line == query
    assert caret == " " * (raised.value.column - 1) + "^"
    # the form keeps what was typed, so it can be fixed in place
    assert sel(doc, "#search-q")[0].get("value") == query


def test_a_lower_case_operator_is_searched_as_a_word_and_says_so(
    client: TestClient, console_state: DemoState
) -> None:
    query = "taiwan or china"
    doc = get(client, "/search", q=query)
    [warning] = sel(doc, ".search-warning")
    assert "'or' is searched as a word" in sel(warning, ".warn")[0].text_content()
    line, caret = sel(warning, "pre")[0].text_content().splitlines()
    assert (line, caret) == (query, " " * query.index("or") + "^")
    assert result_ids(doc) == cli_ids(console_state, query)  # the search runs as typed
    assert not sel(get(client, "/search", q="taiwan OR china"), ".search-warning")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"since": "soon"}, "since: bad duration"),
        ({"limit": "0"}, "limit '0' is not a number of results"),
        ({"limit": "ten"}, "limit 'ten' is not a number of results"),
        ({"story": "abc"}, "story 'abc' is not a story id"),
        ({"story": "99999"}, "no story with id 99999"),
        ({"q": "a NEAR/3 (b NEAR/2 c)"}, "NEAR"),
    ],
)
def test_a_bad_filter_is_one_line_not_a_failure(
    client: TestClient, params: dict[str, str], says: str
) -> None:
    doc = get(client, "/search", **params)
    [error] = sel(doc, "#search-error .error")
    assert says in error.text_content()
    assert not sel(doc, "#search-list")


def test_a_tag_search_with_a_broken_feeds_file_names_the_file(
    client: TestClient, console_state: DemoState
) -> None:
    (console_state.rules / "feeds.yaml").write_text("feeds: [\n", encoding="utf-8")
    doc = get(client, "/search", q="tag:english china")
    assert "feeds.yaml" in sel(doc, "#search-error .error")[0].text_content()
    assert result_ids(get(client, "/search", q="china"))  # a search without tag: still works


def test_results_show_feed_time_language_regions_rules_and_links(
    client: TestClient, console_state: DemoState
) -> None:
    # a report of a story told in several languages (ids depend on the demo's poll order)
    first = cli(console_state, "search", "coast guard", "--rule", "south-china-sea", "--json")
    story = str(json.loads(first.splitlines()[0])["story"])
    expected = json.loads(cli(console_state, "search", "--story", story, "--json").splitlines()[0])
    assert cli_ids(console_state, "", "--story", story) == result_ids(
        get(client, "/search", story=story)
    )
    doc = get(client, "/search", story=story, limit="1")
    [li] = sel(doc, "#search-list > li")
    assert int(li.get("data-item-id")) == expected["id"]
    feed = sel(li, ".feed")[0]  # the outlet's title from feeds.yaml, and its id
    titles = {f.id: f.title for f in load_feeds(console_state.rules / "feeds.yaml").feeds}
    assert titles[expected["feed"]]
    assert (feed.get("data-feed"), feed.text_content()) == (
        expected["feed"],
        titles[expected["feed"]],
    )
    published = datetime.fromisoformat(expected["published"]).strftime("%Y-%m-%d %H:%M")
    assert sel(li, "time")[0].text_content() == f"{published} UTC"
    assert sel(li, "h2 a")[0].get("lang") == expected["lang"]
    assert sel(li, ".result-summary")[0].get("lang") == expected["lang"]
    assert [a.text_content() for a in sel(li, "a.region")] == expected["regions"]
    assert [a.text_content() for a in sel(li, "a.rule")] == expected["rules"]
    assert sel(li, "a.story")[0].get("href") == f"/stories/{story}"
    assert sel(li, "h2 a")[0].get("href") == f"/items/{expected['id']}"
    outlet = sel(li, "a.outlet")[0]
    assert outlet.get("href") == expected["link"]
    assert outlet.get("rel") == "noopener noreferrer"


def test_more_results_and_the_empty_state(client: TestClient, console_state: DemoState) -> None:
    doc = get(client, "/search", q="china", limit="2")
    assert len(result_ids(doc)) == 2
    more = sel(doc, "#search-more")[0].get("href")
    assert more == "/search?q=china&limit=4"
    assert len(result_ids(get(client, more))) == 4
    empty = get(client, "/search", q="zzzyxq")
    assert "No stored item matches" in sel(empty, "#search-empty")[0].text_content()
    assert not sel(empty, "p.unknown-filter")  # every filter names something known
    typo = get(client, "/search", region="taiwan", rule="korea-missile", entity="xi-jinpin")
    assert [p.text_content() for p in sel(typo, "p.unknown-filter")] == [
        "No region has the code 'taiwan' (did you mean TW?).",
        f"No rule has the id 'korea-missile' in {console_state.rules / 'alerts'} (did you mean"
        " korea-missiles?).",
        "No entity has the id 'xi-jinpin' (did you mean xi-jinping?).",
    ]
    newest = get(client, "/search")  # nothing typed: the newest items, as the CLI lists them
    assert len(result_ids(newest)) == 20
    assert "type a query" in sel(newest, "#search-count")[0].text_content()


def test_the_form_works_without_javascript_and_htmx_gets_a_fragment(
    client: TestClient, console_state: DemoState
) -> None:
    doc = get(client, "/search", q="taiwan", region="TW", since="3650d")
    assert sel(doc, "h1")[0].text_content() == "Search"
    [form] = sel(doc, "form#search-form")
    assert (form.get("method"), form.get("action")) == ("get", "/search")
    names = [i.get("name") for i in sel(form, "input")]
    assert names == ["q", "since", "feed", "region", "entity", "rule", "story", "limit"]
    assert sel(form, "input[name=region]")[0].get("value") == "TW"
    # the rules in force and the feeds of feeds.yaml are offered as you type in their fields
    rules = [o.get("value") for o in sel(form, "datalist#search-rule-ids option")]
    assert rules == [rule.id for rule in load_ruleset(console_state.rules).rules] != []
    feeds = [o.get("value") for o in sel(form, "datalist#search-feed-ids option")]
    assert "asia-wire" in feeds and "toto-shimpo" in feeds
    assert form.get("hx-get") == "/search"
    assert form.get("hx-trigger") == "input changed delay:300ms, submit"
    assert form.get("hx-push-url") == "true"
    assert form.get("hx-target") == "#search-results"
    params = {"q": "taiwan", "region": "TW"}
    fragment = client.get("/search", params=params, headers={"hx-request": "true"})
    root = lxml.html.fragment_fromstring(fragment.text)
    assert root.get("id") == "search-results"
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert result_ids(root) == result_ids(doc) != []
    # the form sends its empty fields too: the address put in the location bar has none
    typed = {"q": "taiwan", "since": "", "feed": "", "region": "TW", "limit": ""}
    pushed = client.get("/search", params=typed, headers={"hx-request": "true"})
    assert pushed.headers["hx-push-url"] == "/search?q=taiwan&region=TW"
    restore = {"hx-request": "true", "hx-history-restore-request": "true"}
    assert "<html" in client.get("/search", params=params, headers=restore).text


def test_the_item_page_tells_what_items_show_tells(
    client: TestClient, console_state: DemoState
) -> None:
    # an item a delivered rule matched (ids depend on the order the demo's feeds answered)
    [item_id] = cli_ids(console_state, "coast guard", "--rule", "south-china-sea", "--limit", "1")
    shown = json.loads(cli(console_state, "show", str(item_id), "--json"))
    doc = get(client, f"/items/{item_id}")
    assert sel(doc, "h1#item-title")[0].get("lang") == shown["lang"]
    assert sel(doc, "#item-title")[0].text_content() == shown["title"]
    assert sel(doc, "#item-summary")[0].text_content() == shown["summary"]
    fields = {
        sel(tr, "th")[0].text_content(): sel(tr, "td")[0].text_content()
        for tr in sel(doc, "#item-fields tr")
    }
    assert fields["Guid"] == shown["guid"]
    assert fields["Feed"] == f"{shown['feed']} ({shown['feed_title']})"
    regions = [a.text_content() for a in sel(doc, "#item-regions a")]
    assert regions == shown["regions"]
    entities = [a.get("data-entity") for a in sel(doc, "#item-entities a")]
    assert entities == [e["id"] for e in shown["entities"]]
    rules = [li.get("data-rule") for li in sel(doc, "#item-matches > li")]
    assert rules == [m["rule"] for m in shown["matches"]]
    first = sel(doc, "#item-matches > li")[0]
    hits = sel(first, "ul.hits > li")
    assert len(hits) == len(shown["matches"][0]["hits"])
    for li, hit in zip(hits, shown["matches"][0]["hits"], strict=True):
        # the CLI brackets the hit in its context, the page marks it
        marked = sel(li, "span")[0]
        text = "".join(
            node if isinstance(node, str) else f"[{node.text_content()}]" for node in _parts(marked)
        )
        assert text == hit["context"]
    digests = [tr.get("data-digest") for tr in sel(doc, "#item-digests tbody tr")]
    assert digests == [d["id"] for d in shown["digests"]] != []
    status = [tr.get("data-status") for tr in sel(doc, "#item-digests tbody tr")]
    assert status == [d["status"] for d in shown["digests"]]
    # each digest links to its own page, and its status to its row among the deliveries
    first_digest = shown["digests"][0]["id"]
    assert sel(doc, "#item-digests a.digest")[0].get("href") == f"/deliveries/{first_digest}"
    assert sel(doc, "#item-digests a.badge")[0].get("href") == f"/deliveries#digest-{first_digest}"
    assert sel(doc, "a#item-story")[0].get("href") == f"/stories/{shown['story']}"
    assert sel(doc, "a#item-link")[0].get("rel") == "noopener noreferrer"
    assert not sel(doc, "#item-history")


def _parts(element: HtmlElement) -> list[Any]:
    """An element's text and children in order (text as str, children as elements)."""
    out: list[Any] = [element.text or ""]
    for child in element:
        out += [child, child.tail or ""]
    return out


def test_a_history_item_says_so_and_went_in_no_digest(
    client: TestClient, console_state: DemoState
) -> None:
    item_id = add_item(console_state, "h1", "PLA drills around Taiwan", "", history=True)
    doc = get(client, f"/items/{item_id}")
    assert sel(doc, "#item-history")
    assert sel(doc, "#item-matches .badge.history")
    assert "In no digest" in sel(doc, "#item-digests")[0].text_content()
    assert "No story" in sel(doc, "#item-story")[0].text_content()


def test_an_unknown_item_is_a_404_page(client: TestClient) -> None:
    for path in ("/items/999999", "/items/abc"):
        response = client.get(path)
        assert response.status_code == 404
        assert sel(lxml.html.fromstring(response.text), "h1")
    assert "No item with id 999999" in client.get("/items/999999").text


def test_marks_follow_folding_and_keep_the_hit_in_view() -> None:
    # A ligature folds to two letters: the offsets are in the folded text, so it is shown.
    assert pieces("ﬁnal Taiwan", [(6, 12)]) == [Piece("final ", False), Piece("taiwan", True)]
    assert pieces("Taiwan Strait", [(0, 6), (2, 4)]) == [
        Piece("Taiwan", True),
        Piece(" Strait", False),
    ]
    text = "x" * 500 + " taiwan " + "y" * 500
    cut = clipped(pieces(text, [(501, 507)]), 100)
    assert cut[0] == cut[-1] == Piece("…", False)
    assert Piece("taiwan", True) in cut
    assert sum(len(p.text) for p in cut[1:-1]) == 100
    tree = parse_query('taiwan -film title:(drill* OR "live fire") region:TW taiwan')
    assert positive_words(tree) == [Term("taiwan"), Term("drill", prefix=True), Phrase("live fire")]


def test_show_more_stops_at_the_largest_page() -> None:
    full = [object()] * 150
    assert _more(SearchForm(q="china"), Outcome(results=full[:20], limit=20)) == "q=china&limit=40"  # type: ignore[arg-type]
    assert _more(SearchForm(), Outcome(results=full, limit=150)) == f"limit={MAX_LIMIT}"  # type: ignore[arg-type]
    assert _more(SearchForm(), Outcome(results=full[:19], limit=20)) is None  # type: ignore[arg-type]
    assert _more(SearchForm(), Outcome(results=full * 2, limit=MAX_LIMIT)) is None  # type: ignore[arg-type]

"""The stories page (`/`) and one story (`/stories/{id}`), on the real demo's database, read
as HTML (lxml) through the in-process client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest
from starlette.testclient import TestClient

from monitor.store import Store
from monitor.store.surges import Surges
from monitor.store.web_stories import ChartSurge, StoryFilter, find_page, hourly_matches
from monitor.web.chart import HOURS, build_chart
from monitor.web.pages import stories as stories_page

from .conftest import DemoState, on_both

ALL = "/?since=all"
# Stories a page in these tests: the demo's stories then fill several, however many it makes.
PAGE = 20


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stories_page, "PAGE_SIZE", PAGE)


def html(response: object) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.text)  # type: ignore[attr-defined]


def rows(doc: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    return doc.xpath("//ol[@id='story-list']/li[@data-story-id]")


def ids(doc: lxml.html.HtmlElement) -> list[int]:
    return [int(li.get("data-story-id")) for li in rows(doc)]


def all_ids(client: TestClient, query: str) -> list[int]:
    """Every story the page lists for `query`, following the pager."""
    found, url = [], query
    while url:
        doc = html(client.get(url))
        found += ids(doc)
        nxt = doc.xpath("//nav[@id='story-pager']/a[@rel='next']")
        url = nxt[0].get("href") if nxt else ""
    return found


@on_both
def test_the_page_is_a_get_form_and_a_list_of_stories(client: TestClient) -> None:
    response = client.get(ALL)
    assert response.status_code == 200
    doc = html(response)
    assert doc.xpath("//h1")[0].text_content() == "Stories"
    form = doc.xpath("//form[@id='story-filters']")[0]
    assert form.get("method") == "get"
    names = {e.get("name") for e in form.xpath(".//input | .//select")}
    assert {"rule", "region", "entity", "severity", "language", "feed", "since"} <= names
    listed = rows(doc)
    assert len(listed) == PAGE  # the demo has more stories: a second page follows
    first = listed[0]
    link = first.xpath(".//a[@class='story-headline']")[0]
    assert link.get("href") == f"/stories/{first.get('data-story-id')}"
    assert first.xpath(".//time")  # first and last report


@on_both
def test_a_filter_naming_nothing_known_says_so(client: TestClient) -> None:
    # A typo must not read as "no news": the empty list says which filter names nothing.
    doc = html(client.get(f"{ALL}&region=north+korea&entity=xi-jinpin"))
    assert not rows(doc)
    assert [p.text_content() for p in doc.xpath("//p[contains(@class, 'unknown-filter')]")] == [
        "No region has the code 'north korea' (did you mean KP?).",
        "No entity has the id 'xi-jinpin' (did you mean xi-jinping?).",
    ]
    known = html(client.get(f"{ALL}&region=KP&since=6h"))  # nothing that recent: only that
    assert not rows(known) and not known.xpath("//p[contains(@class, 'unknown-filter')]")


@on_both
def test_pages_hold_every_story_once(client: TestClient, console_state: DemoState) -> None:
    listed = all_ids(client, ALL)
    with Store(console_state.db) as store:
        stored = {r.id for r in store.find_stories(limit=10_000)}
    assert len(listed) == len(set(listed)) == len(stored)
    assert set(listed) == stored


@on_both
def test_surging_stories_come_first_then_the_latest(client: TestClient) -> None:
    doc = html(client.get(ALL))
    surging = [li.get("data-surging") == "true" for li in rows(doc)]
    assert any(surging) and not all(surging)
    assert surging == sorted(surging, reverse=True)  # no surging story after a quiet one
    for li in rows(doc):
        assert bool(li.xpath(".//span[@class='badge surge']")) == (li.get("data-surging") == "true")
    quiet = [li for li in rows(doc) if li.get("data-surging") != "true"]
    lasts = [li.xpath(".//time")[1].get("datetime") for li in quiet]
    assert lasts == sorted(lasts, reverse=True)


@on_both
def test_a_surge_older_than_a_day_does_not_lift_a_story(
    client: TestClient, console_state: DemoState
) -> None:
    surged = [i for i, flag in _flags(client) if flag]
    with Store(console_state.db) as store, store._write() as conn:
        conn.execute("UPDATE surges SET fired_at = '2020-01-01T00:00:00.000000+00:00'")
    assert surged and not any(flag for _, flag in _flags(client))


def _flags(client: TestClient) -> list[tuple[int, bool]]:
    doc = html(client.get(ALL))
    return [(int(li.get("data-story-id")), li.get("data-surging") == "true") for li in rows(doc)]


@on_both
def test_the_console_and_the_cli_agree_on_rule_and_region(
    client: TestClient, console_state: DemoState
) -> None:
    with Store(console_state.db) as store:
        cli = {r.id for r in store.find_stories(None, "korea-missiles", "KP", limit=10_000)}
    assert cli
    assert set(all_ids(client, "/?since=all&rule=korea-missiles&region=kp")) == cli


@on_both
@pytest.mark.parametrize(
    ("query", "select", "check"),
    [
        (
            "language=ko",
            ".//span[@class='story-languages']/a",
            lambda texts: any(t.startswith("ko") for t in texts),
        ),
        (
            "language=zh",
            ".//span[@class='story-languages']/a",
            lambda texts: any(t.startswith("zh") for t in texts),
        ),
        ("region=TW", ".//span[@class='story-regions']/a", lambda texts: "TW" in texts),
        ("severity=critical", ".//span[@data-severity]", lambda texts: texts == ["critical"]),
    ],
)
def test_each_filter_keeps_only_what_passes(
    client: TestClient, query: str, select: str, check: object
) -> None:
    doc = html(client.get(f"{ALL}&{query}"))
    listed = rows(doc)
    assert listed and len(all_ids(client, f"{ALL}&{query}")) < len(all_ids(client, ALL))
    for li in listed:
        assert check([e.text_content() for e in li.xpath(select)]), (query, li.get("id"))  # type: ignore[operator]


@on_both
def test_feed_entity_language_and_region_filters_find_every_story(
    client: TestClient, console_state: DemoState
) -> None:
    with Store(console_state.db) as store:
        stories = store.find_stories(limit=10_000)
    feed = "hanbando-ilbo"
    assert set(all_ids(client, f"{ALL}&feed={feed}")) == {
        s.id for s in stories if feed in s.outlets
    }
    chinese = {s.id for s in stories if any(lang.startswith("zh") for lang in s.languages)}
    assert {"zh-cn", "zh-tw"} <= {lang for s in stories for lang in s.languages}
    assert set(all_ids(client, f"{ALL}&language=ZH")) == chinese
    assert set(all_ids(client, f"{ALL}&region=kp")) == {s.id for s in stories if "KP" in s.regions}
    entity = "kp-pyongyang"
    want = {s.id for s in stories if entity in s.entities}
    assert want and set(all_ids(client, f"{ALL}&entity={entity}")) == want
    assert set(all_ids(client, f"{ALL}&entity={entity}&feed={feed}")) == want & {
        s.id for s in stories if feed in s.outlets
    }


@on_both
def test_severity_means_at_least(client: TestClient) -> None:
    high = set(all_ids(client, f"{ALL}&severity=high"))
    critical = set(all_ids(client, f"{ALL}&severity=critical"))
    assert critical and critical < high  # high shows the critical stories and more


@on_both
def test_the_time_filter_counts_the_last_report(client: TestClient) -> None:
    # The demo's week lies in the past; one report of it is dated now (its clock was ahead).
    recent = html(client.get("/"))
    now = datetime.now(UTC)
    for li in rows(recent):
        last = datetime.fromisoformat(li.xpath(".//time")[1].get("datetime"))
        assert last >= now - timedelta(days=7)
    assert len(all_ids(client, "/")) < len(all_ids(client, ALL))


@on_both
def test_headlines_carry_their_language(client: TestClient) -> None:
    doc = html(client.get(f"{ALL}&language=ja"))
    langs = {a.get("lang") for a in doc.xpath("//a[@class='story-headline']")}
    assert "ja" in langs


@on_both
def test_a_bad_filter_is_named_and_the_page_still_answers(client: TestClient) -> None:
    response = client.get("/?since=3d&severity=urgent")
    assert response.status_code == 400
    alerts = [p.text_content() for p in html(response).xpath("//*[@role='alert']")]
    assert any("'3d'" in a and "7d" in a for a in alerts)
    assert any("'urgent'" in a and "critical" in a for a in alerts)


@on_both
def test_no_story_says_what_to_do(client: TestClient) -> None:
    doc = html(client.get("/?region=AQ"))
    empty = doc.xpath("//div[@id='story-empty']")[0].text_content()
    assert "No story" in empty and "any time" in empty


@on_both
def test_htmx_gets_the_results_only(client: TestClient) -> None:
    response = client.get(f"{ALL}&rule=korea-missiles", headers={"hx-request": "true"})
    assert "<html" not in response.text
    doc = lxml.html.fragment_fromstring(response.text, create_parent="div")
    assert doc.xpath("//ol[@id='story-list']/li") and doc.xpath("//figure[@id='story-chart']/svg")


# --- the chart -------------------------------------------------------------------------------


@on_both
def test_the_chart_shows_a_rules_matches_and_its_surges(
    client: TestClient, console_state: DemoState
) -> None:
    assert not html(client.get(ALL)).xpath("//figure[@id='story-chart']")
    doc = html(client.get(f"{ALL}&rule=korea-missiles"))
    svg = doc.xpath("//figure[@id='story-chart']/svg")[0]
    title = svg.xpath("./title")[0].text_content()
    with Store(console_state.db) as store:
        matched = store._rows(
            "SELECT count(*) AS n FROM matches WHERE rule_id = 'korea-missiles' AND history = 0"
        )[0]["n"]
        fired = [s for s in Surges(store).recent(1000) if s.surge.key == "rule:korea-missiles"]
    assert matched > 0 and f"{matched} in all" in title
    assert sum(int(b.get("data-count")) for b in svg.xpath(".//rect[@class='bar']")) == matched
    assert svg.get("role") == "img"
    assert len(svg.xpath(".//path[@class='surge-mark']")) == len(fired) > 0
    assert len(svg.xpath(".//text[@class='day']")) == 7


@on_both
def test_the_chart_of_a_region(client: TestClient) -> None:
    doc = html(client.get(f"{ALL}&region=KP"))
    title = doc.xpath("//figure[@id='story-chart']/svg/title")[0].text_content()
    assert "region KP" in title


def test_chart_layout() -> None:
    now = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)
    counts = {"2026-12-03T14": 4, "2026-12-03T13": 2, "2026-11-20T00": 99}  # last: too old
    surge = ChartSurge("rule:x", datetime(2026, 12, 3, 14, 5, tzinfo=UTC), "4 in the last hour")
    chart = build_chart("rule x", counts, [surge], now)
    assert (chart.total, chart.peak, len(chart.bars)) == (6, 4, 2)
    assert chart.bars[-1].hour == "2026-12-03 14:00" and chart.bars[-1].height == 120
    assert chart.bars[0].height == 60
    assert len(chart.ticks) == 7 and chart.ticks[-1].label == "12-03"
    assert chart.marks[0].x > chart.bars[0].x
    assert chart.label.endswith("1 volume surge marked")
    assert chart.start == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert HOURS == 168
    empty = build_chart("region AQ", {}, [], now)
    assert (empty.total, empty.bars, empty.marks) == (0, (), ())


# --- one story -------------------------------------------------------------------------------


def _widest(console_state: DemoState) -> int:
    with Store(console_state.db) as store:
        stories = store.find_stories(limit=10_000)
    return max(stories, key=lambda s: (len(s.languages), s.reports)).id


@on_both
def test_a_story_shows_its_reports_in_every_language(
    client: TestClient, console_state: DemoState
) -> None:
    story = _widest(console_state)
    with Store(console_state.db) as store:
        links = store.story_links(story)
    response = client.get(f"/stories/{story}")
    assert response.status_code == 200
    doc = html(response)
    assert doc.xpath("//h1")
    reports = doc.xpath("//table[@id='story-reports']/tbody/tr")
    assert [int(tr.get("data-item-id")) for tr in reports] == [x.stored.id for x in links]
    langs = {
        td.get("lang") for td in doc.xpath("//table[@id='story-reports']//td[@class='report']")
    }
    assert len(langs) >= 3
    for a in doc.xpath("//table[@id='story-reports']//td[@class='report']/a"):
        assert a.get("rel") == "noopener noreferrer"
        assert a.get("href").startswith("http")
    whys = [td.text_content() for td in doc.xpath("//table[@id='story-reports']//td[@class='why']")]
    assert whys[0].startswith("started the story")
    assert any(w.startswith("joined, score") for w in whys[1:])
    assert doc.xpath("//dd[@id='story-rules']/a[@data-rule]")
    assert doc.xpath("//dd[@id='story-regions']/a")


@on_both
def test_a_merged_story_redirects_and_an_unknown_one_is_404(
    client: TestClient, console_state: DemoState
) -> None:
    with Store(console_state.db) as store:
        a, b = (s.id for s in store.find_stories(limit=2))
        store.merge_stories(a, b)
    moved = client.get(f"/stories/{b}", follow_redirects=False)
    assert moved.status_code == 302 and moved.headers["location"] == f"/stories/{a}"
    assert client.get(f"/stories/{b}").status_code == 200
    missing = client.get("/stories/999999")
    assert missing.status_code == 404
    doc = html(missing)
    assert "999999" in doc.xpath("//p[@role='alert']")[0].text_content()
    assert doc.xpath("//h1")


@on_both
def test_feed_text_is_text_and_only_web_links_are_links(
    client: TestClient, console_state: DemoState
) -> None:
    story = _widest(console_state)
    with Store(console_state.db) as store:
        first, second = (x.stored.id for x in store.story_links(story)[:2])
        with store._write() as conn:
            conn.execute(
                "UPDATE items SET title = '<script>alert(1)</script>',"
                " link = 'javascript:alert(2)' WHERE id = ?",
                (first,),
            )
            conn.execute("UPDATE items SET link = NULL WHERE id = ?", (second,))
    response = client.get(f"/stories/{story}")
    assert "<script>alert(1)" not in response.text
    doc = html(response)
    cells = {
        int(tr.get("data-item-id")): tr.xpath("./td[@class='report']")[0]
        for tr in doc.xpath("//table[@id='story-reports']/tbody/tr")
    }
    assert cells[first].text_content().strip() == "<script>alert(1)</script>"
    assert not cells[first].xpath(".//a") and not cells[second].xpath(".//a")
    assert "javascript:" not in response.text


def _plans(console_state: DemoState, run: Callable[[Store], object]) -> list[str]:
    """The query plan of every statement `run` makes the store execute."""
    with Store(console_state.db) as store:
        executed: list[str] = []
        store._db.conn.set_trace_callback(executed.append)
        run(store)
        store._db.conn.set_trace_callback(None)
        return [
            "\n".join(row[3] for row in store._db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in executed
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))
        ]


def test_the_list_is_read_in_index_order_and_stops_at_the_page(
    console_state: DemoState,
) -> None:
    # At 100,000 items a list sorted after reading would read every story of the window.
    week = StoryFilter(since=datetime.now(UTC) - timedelta(days=7), region="KP")
    for wanted in (week, StoryFilter(), StoryFilter(language="ja", rules=("korea-missiles",))):
        plans = _plans(console_state, lambda store, w=wanted: find_page(store, w, {1}, 0, 51))
        rest = plans[-1]  # the stories that did not surge: all but a handful
        assert "USING INDEX stories_last_seen" in rest, rest
        assert "TEMP B-TREE" not in rest, rest


def test_the_chart_reads_matches_by_time(console_state: DemoState) -> None:
    start = datetime.now(UTC) - timedelta(days=7)
    [by_rule] = _plans(console_state, lambda s: hourly_matches(s, start, rule="korea-missiles"))
    assert "matches_rule (rule_id=? AND matched_at>?)" in by_rule
    [by_region] = _plans(console_state, lambda s: hourly_matches(s, start, region="KP"))
    assert "matches_time (matched_at>?)" in by_region, by_region


@on_both
def test_a_surge_follows_its_story_into_a_merge(
    client: TestClient, console_state: DemoState
) -> None:
    flags = dict(_flags(client))
    surged = next(i for i, flag in flags.items() if flag)
    quiet = next(i for i, flag in flags.items() if not flag)
    with Store(console_state.db) as store:
        store.merge_stories(quiet, surged)
    after = dict(_flags(client))
    assert surged not in after and after[quiet] is True
    doc = html(client.get(f"/stories/{quiet}"))
    assert doc.xpath("//h1[@id='story-title']/span[@class='badge surge']")


@on_both
def test_a_broken_rule_file_leaves_the_stories_readable(
    client: TestClient, console_state: DemoState
) -> None:
    broken = console_state.rules / "alerts" / "zz-broken.yaml"
    broken.write_text("rules:\n  - id: half-typed\n    query: '(taiwan'\n", encoding="utf-8")
    response = client.get(ALL)
    assert response.status_code == 200
    doc = html(response)
    warning = doc.xpath("//p[@id='rules-broken']")[0].text_content()
    assert "zz-broken.yaml:3" in warning
    assert len(rows(doc)) == PAGE
    story = ids(doc)[0]
    assert client.get(f"/stories/{story}").status_code == 200
    broken.unlink()  # fixed: the rules are back at the next request
    assert not html(client.get(ALL)).xpath("//p[@id='rules-broken']")

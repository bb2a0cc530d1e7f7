"""The console's pages read from PostgreSQL are the pages read from SQLite: the demo's rows in
both (`pgdemo`: the same ids), every page the store's web_* modules feed, compared as HTML.

What may differ between two renders is left out of the comparison: the CSRF token (one per
client), how long ago something happened ("10 s ago" read a second later) and how long the
playground took ("(13 ms)"); nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest
from starlette.testclient import TestClient

from monitor.store import Store, web_ops, web_rules, web_stories
from monitor.store.surges import Surges
from monitor.store.web_stories import StoryFilter

from .conftest import DemoState, make_client

FILTERS = [
    "/?since=all",
    "/?since=all&rule=korea-missiles",
    "/?since=all&region=kp",
    "/?since=all&region=TW&language=zh",
    "/?since=all&language=ja",
    "/?since=all&severity=critical",
    "/?since=all&rule=korea-missiles&region=KP",
    "/?since=30d",
    "/",
    "/?since=all&region=AQ",
]

_AGO = re.compile(r"\b(\d+)(\s?[a-z]+) ago\b")
_TOOK = re.compile(r"\(\d+ ms\)")


@pytest.fixture
def clients(
    console_state: DemoState, pg_demo: Callable[[], str]
) -> Iterator[tuple[TestClient, TestClient]]:
    """A client on a copy of the demo's SQLite file, and one on the same rows in PostgreSQL."""
    on_pg = DemoState(db=pg_demo(), rules=console_state.rules)
    with make_client(console_state) as lite, make_client(on_pg) as pg:
        yield lite, pg


def page(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text[-2000:])
    token = client.cookies.get("monitor_csrf")
    text = response.text.replace(token, "CSRF") if token else response.text
    return _TOOK.sub("(N ms)", _AGO.sub(r"N\2 ago", text))


def same(clients: tuple[TestClient, TestClient], url: str) -> str:
    lite, pg = (page(c, url) for c in clients)
    assert pg == lite, url
    return lite


def links(text: str, pattern: str) -> list[str]:
    found = lxml.html.fromstring(text).xpath("//a/@href")
    return sorted({h for h in found if re.fullmatch(pattern, h)})


def test_the_stories_pages_with_every_filter_and_the_chart(
    clients: tuple[TestClient, TestClient], console_state: DemoState
) -> None:
    with Store(console_state.db) as store:
        story = max(store.find_stories(limit=1000), key=lambda s: len(s.outlets))
    extra = [
        f"/?since=all&entity={story.entities[0]}",
        f"/?since=all&feed={story.outlets[0]}",
        f"/?since=all&feed={story.outlets[0]}&language={story.languages[0]}&region=KP",
    ]
    listed = 0
    for url in FILTERS + extra:
        text = same(clients, url)
        listed += len(links(text, r"/stories/\d+"))
        for nxt in links(text, r"/\?.*page=\d+.*"):  # the pager's next pages
            listed += len(links(same(clients, nxt), r"/stories/\d+"))
    assert listed > 100  # pages of stories were compared, not empty lists
    chart = lxml.html.fromstring(same(clients, "/?since=all&rule=korea-missiles"))
    assert chart.xpath("//figure[@id='story-chart']/svg//rect[@class='bar']")
    for url in links(same(clients, "/?since=all&region=KP"), r"/stories/\d+"):
        same(clients, url)


def test_every_story_page(clients: tuple[TestClient, TestClient], console_state: DemoState) -> None:
    with Store(console_state.db) as store:
        stories = store.find_stories(limit=1000)
    assert len(stories) > 40
    for story in stories:
        same(clients, f"/stories/{story.id}")


def test_the_rules_feeds_and_deliveries_pages(clients: tuple[TestClient, TestClient]) -> None:
    same(clients, "/rules")
    same(clients, "/rules?sort=week")
    same(clients, "/rules?sort=last")
    for rule in ("korea-missiles", "china-japan-row"):  # the playground reads the same items
        same(clients, f"/rules/playground?rule={rule}&days=400")
    same(clients, "/feeds")
    digests = links(same(clients, "/deliveries"), r"/deliveries/[^/]+")
    assert digests
    for url in digests:
        same(clients, url)


def test_the_console_queries_answer_alike(
    console_state: DemoState, pg_demo: Callable[[], str]
) -> None:
    """Each query of web_stories, web_ops, web_rules and `Surges` on the same rows: equal."""
    now = datetime.now(UTC)
    week = now - timedelta(days=7)  # the matches' times: the demo stored them just now
    ages = datetime(2000, 1, 1, tzinfo=UTC)  # the reports' times: the demo's week is past
    with Store(console_state.db) as lite, Store(pg_demo()) as pg:
        stories = lite.find_stories(limit=1000)
        rules = sorted({r["rule_id"] for r in lite._rows("SELECT rule_id FROM matches")})
        digests = [r["id"] for r in lite._rows("SELECT id FROM digests ORDER BY id")]
        wide = max(stories, key=lambda s: (len(s.outlets), s.id))
        surging = web_stories.surging_stories(lite, now - timedelta(days=1))
        assert surging and len(rules) > 3 and digests
        for store in (lite, pg):
            with store._write() as conn:
                conn.execute(
                    "INSERT INTO disabled_receivers (receiver_id, reason, since) VALUES"
                    " ('ops', 'HTTP 410: gone', '2026-01-02T03:04:05.000000+00:00')"
                )
        filters = [
            StoryFilter(),
            StoryFilter(since=ages, region="kp"),
            StoryFilter(rules=tuple(rules[:2]), language="zh"),
            StoryFilter(entity=wide.entities[0], feed=wide.outlets[-1]),
            StoryFilter(language=wide.languages[0], region=wide.regions[0]),
        ]
        queries: list[Callable[[Store], object]] = [
            *(
                lambda s, f=f, o=o: web_stories.find_page(s, f, set(surging), o, 20)
                for f in filters
                for o in (0, 3, 40)
            ),
            lambda s: web_stories.surging_stories(s, now - timedelta(days=1)),
            lambda s: web_stories.hourly_matches(s, week),
            lambda s: web_stories.hourly_matches(s, week, rule=rules[0]),
            lambda s: web_stories.hourly_matches(s, week, region="kp"),
            lambda s: web_stories.hourly_matches(s, week, rule=rules[1], region="TW"),
            lambda s: web_stories.volume_surges(s, week, [f"rule:{r}" for r in rules]),
            web_stories.feed_ids,
            web_ops.items_per_feed,
            lambda s: [web_ops.digest_entries(s, d) for d in digests],
            lambda s: web_ops.surge_alerts(s, digests),
            web_ops.disabled_receivers,
            lambda s: web_rules.rule_activity(s, [*rules, "never-matched"], week),
            lambda s: web_rules.window_texts(s, ages, None, 40),
            lambda s: web_rules.count_window(s, ages),
            lambda s: Surges(s).volume_counts(now, 1),
            lambda s: Surges(s).recent(100),
            lambda s: Surges(s).counts(),
            lambda s: Surges(s).story_reports(ages),
            lambda s: s.find_stories(since=ages, rule_id="korea-missiles", region="KP"),
            lambda s: s.recent_reports([x.id for x in stories], ages),
            lambda s: s.story_token(),
        ]
        answers = [query(lite) for query in queries]
        assert [query(pg) for query in queries] == answers
        pages = 3 * len(filters)
        assert all(answers[:pages:3]) and all(answers[pages:])  # not just empty lists alike

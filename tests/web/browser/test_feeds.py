"""The feeds page in a real browser, fed by a real feed server: markup a feed (or whoever
wrote feeds.yaml) put in a title shows as text and never runs; failing feeds stand out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.feedserver import FeedServer, serve, status
from tests.support.service import RunningService
from tests.web.conftest import DemoState

from .conftest import Tab, copy_demo, open_tab, start_service

FEED_TITLE = '<script>alert("feed")</script> Evil Wire'
ITEM_TITLE = "<script>alert('item')</script> Taiwan coast guard drill"
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>&lt;script&gt;alert("channel")&lt;/script&gt;</title>
<link>https://evil.example/</link><description>markup everywhere</description>
<item><guid>evil-1</guid><title>{ITEM_TITLE.replace("<", "&lt;").replace(">", "&gt;")}</title>
<link>https://evil.example/1</link>
<description><![CDATA[<img src="x" onerror="alert('img')"> Drills near Taiwan.]]></description>
<pubDate>Wed, 02 Dec 2026 08:00:00 GMT</pubDate></item>
</channel></rss>
""".encode()


@pytest.fixture(scope="module")
def evil(
    demo_state: DemoState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service polling, besides the demo's feeds, one whose titles carry markup and one
    that fails."""
    routes = {"/feed.xml": serve(RSS), "/broken.xml": status(500)}
    with FeedServer(routes) as server:
        state = copy_demo(demo_state, tmp_path_factory.mktemp("evil"))
        with (state.rules / "feeds.yaml").open("a") as feeds:
            feeds.write(
                f"- id: evil-wire\n  url: {server.url('/feed.xml')}\n"
                f"  title: '{FEED_TITLE}'\n  interval: 1h\n"
                f"- id: broken-wire\n  url: {server.url('/broken.xml')}\n  interval: 1h\n"
            )
        service = start_service(state)
        service.wait_for("poll cycle: ")
        assert server.requests_to("/feed.xml"), "the service never polled the feed"
        yield service
        assert service.stop() == 0


@pytest.fixture
def evil_tab(chromium: Browser, evil: RunningService) -> Iterator[Tab]:
    yield from open_tab(chromium, evil.url)


def test_markup_in_a_feed_title_shows_as_text_and_never_runs(evil_tab: Tab) -> None:
    page = evil_tab.open("/feeds")
    row = page.locator("#feed-evil-wire")
    assert row.locator("td.name a").first.inner_text() == FEED_TITLE  # literally, as written
    assert row.get_attribute("data-health") == "ok"
    assert page.locator("main script").count() == 0

    page = evil_tab.open("/search?q=feed:evil-wire")
    result = page.locator("#search-list > li.search-result")
    assert result.count() == 1
    assert "Taiwan coast guard drill" in result.locator(".result-title").inner_text()
    assert page.locator("main script, main img").count() == 0
    result.locator(".result-title a").click()
    page.wait_for_url("**/items/*")
    assert "Taiwan coast guard drill" in page.locator("#item-title").inner_text()
    assert page.locator("main script, main img").count() == 0
    assert not evil_tab.seen.dialogs  # no alert() ran anywhere
    evil_tab.seen.assert_clean()


def test_failing_feeds_stand_out_and_the_columns_sort(evil_tab: Tab) -> None:
    page = evil_tab.open("/feeds")
    assert page.locator("#feed-broken-wire").get_attribute("class") is not None
    assert "troubled" in (page.locator("#feed-broken-wire").get_attribute("class") or "")
    assert "500" in page.locator("#feed-broken-wire td.last-error").inner_text()
    troubled = page.locator("#feeds-table tr.feed.troubled")
    assert troubled.count() >= 1
    assert troubled.first.locator("td.last-error").inner_text().strip()
    # A feed backing off is counted as failing too (it failed, and waits to try again).
    assert int(page.locator("#feed-summary li.failing strong").inner_text()) == troubled.count()

    page.locator("#feeds-table th[data-column=feed] a").click()
    page.wait_for_url("**sort=feed**")
    names = page.locator("#feeds-table tbody td.name > a").all_inner_texts()
    assert names == sorted(names, key=str.casefold) or names == sorted(
        names, key=str.casefold, reverse=True
    )
    evil_tab.seen.assert_clean()

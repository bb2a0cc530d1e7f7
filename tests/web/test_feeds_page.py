"""The console's feeds page (`GET /feeds`) on the demo's database: the real pipeline's feeds,
one of them broken on purpose.

Expected: every feed of feeds.yaml with the figures `monitor status` shows (same health word,
last error, items stored); troubled feeds carry a class and a badge; the summary counts ok,
failing, backing off and disabled feeds; every column sorts both ways from its header link;
a bad sort, an empty list and a broken feeds.yaml each get a page that says what to do.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest
from starlette.testclient import TestClient

from monitor.cli.report import health
from monitor.ingest.feeds import load_feeds
from monitor.store import Store
from monitor.web.pages.feeds import COLUMNS

from .conftest import DemoState, make_client, on_both

BROKEN = "manila-courier"  # the demo's outlet that serves an HTML page instead of a feed


def rows(html: str) -> list[lxml.html.HtmlElement]:
    return lxml.html.fromstring(html).xpath("//table[@id='feeds-table']/tbody/tr")


def summary(html: str) -> dict[str, int]:
    doc = lxml.html.fromstring(html)
    return {
        li.get("data-state"): int(li.xpath("./strong/@data-count")[0])
        for li in doc.xpath("//ul[@id='feed-summary']/li[@data-state]")
    }


@on_both
def test_every_feed_is_shown_with_the_figures_of_monitor_status(
    client: TestClient, console_state: DemoState
) -> None:
    feeds = load_feeds(console_state.rules / "feeds.yaml").feeds
    response = client.get("/feeds")
    assert response.status_code == 200
    shown = {row.get("data-feed"): row for row in rows(response.text)}
    assert sorted(shown) == sorted(f.id for f in feeds)
    with Store(console_state.db) as store:
        states = store.states()
        for feed in feeds:
            row, state = shown[feed.id], states[feed.id]
            assert row.xpath(".//span[contains(@class, 'badge')]/text()")[0] == health(feed, state)
            assert int(row.xpath("./td[last()]//a/text()")[0]) == store.count_items(feed.id)
            error = row.xpath("./td[contains(@class, 'last-error')]//text()")
            assert "".join(error).strip() == (state.last_error or "")
            link = row.xpath("./td[contains(@class, 'name')]/a")[0]
            assert link.text == (feed.title or feed.id)
            assert link.get("rel") == "noopener noreferrer"
    broken = shown[BROKEN]
    assert "troubled" in broken.get("class").split()
    assert broken.get("data-health") == "backing-off"  # failed once, waits before the retry
    assert "HTML page" in "".join(broken.xpath("./td[contains(@class, 'last-error')]//text()"))
    assert not any("troubled" in r.get("class") for f, r in shown.items() if f != BROKEN)
    expected = {"ok": 7, "failing": 1, "backing-off": 1, "disabled": 0}
    assert summary(response.text) == expected


@on_both
@pytest.mark.parametrize("column", list(COLUMNS))
def test_every_column_sorts_both_ways_from_its_header(client: TestClient, column: str) -> None:
    ascending = client.get(f"/feeds?sort={column}&order=asc")
    descending = client.get(f"/feeds?sort={column}&order=desc")
    assert ascending.status_code == descending.status_code == 200
    doc = lxml.html.fromstring(ascending.text)
    [head] = doc.xpath(f"//th[@data-column='{column}']")
    assert head.get("aria-sort") == "ascending"
    assert head.xpath("./a/@href")[0] == f"/feeds?sort={column}&order=desc"  # the toggle
    assert len(doc.xpath("//th[@aria-sort]")) == 1
    up = [r.get("data-feed") for r in rows(ascending.text)]
    down = [r.get("data-feed") for r in rows(descending.text)]
    assert sorted(up) == sorted(down) and len(up) == 8


@on_both
def test_sorting_orders_the_rows_by_the_column(client: TestClient) -> None:
    def counts(query: str) -> list[int]:
        return [int(r.xpath("./td[last()]//a/text()")[0]) for r in rows(client.get(query).text)]

    by_items = counts("/feeds?sort=items&order=desc")
    assert by_items == sorted(by_items, reverse=True) and by_items[0] > by_items[-1]
    assert counts("/feeds?sort=items&order=asc") == sorted(by_items)
    names = [r.xpath(".//td[1]/a/text()")[0] for r in rows(client.get("/feeds?sort=feed").text)]
    assert names == sorted(names, key=str.casefold)
    # The default order puts the feeds that need a look first.
    assert rows(client.get("/feeds").text)[0].get("data-feed") == BROKEN
    never = rows(client.get("/feeds?sort=last_success&order=asc").text)
    assert never[-1].get("data-feed") == BROKEN  # no value: last either way
    assert (
        rows(client.get("/feeds?sort=last_success&order=desc").text)[-1].get("data-feed") == BROKEN
    )


def test_a_bad_sort_is_refused_with_the_columns_to_use(client: TestClient) -> None:
    response = client.get("/feeds?sort=colour")
    assert response.status_code == 400
    message = lxml.html.fromstring(response.text).xpath("//p[@role='alert']/text()")[0]
    assert message.startswith("cannot sort by 'colour': use one of feed, enabled, health")
    assert client.get("/feeds?sort=items&order=sideways").status_code == 400


@on_both
def test_failing_backing_off_and_disabled_feeds_are_told_apart(
    console_state: DemoState,
) -> None:
    now = datetime.now(UTC)
    with Store(console_state.db) as store:  # a feed whose retry is due now: failing, not waiting
        state = store.states()["asia-wire"]
        store.save_state(
            dataclasses.replace(
                state, consecutive_errors=3, last_error="HTTP 503 Service Unavailable",
                next_due=now - timedelta(minutes=1),
            )
        )  # fmt: skip
    feeds_file = console_state.rules / "feeds.yaml"
    text = feeds_file.read_text(encoding="utf-8")
    text = text.replace(
        "  title: The Pacific Ledger\n", "  title: The Pacific Ledger\n  enabled: false\n"
    )
    feeds_file.write_text(text, encoding="utf-8")
    with make_client(console_state) as client:
        response = client.get("/feeds")
    shown = {row.get("data-feed"): row for row in rows(response.text)}
    assert shown["asia-wire"].get("data-health") == "failing"
    assert shown["asia-wire"].xpath(".//span[contains(@class, 'badge')]/text()") == ["failing x3"]
    assert "due now" in shown["asia-wire"].text_content()
    assert shown["pacific-ledger"].get("data-health") == "disabled"
    assert "enabled: false" in shown["pacific-ledger"].text_content()
    assert summary(response.text) == {"ok": 5, "failing": 2, "backing-off": 1, "disabled": 1}


def test_a_feed_title_is_text_never_markup(console_state: DemoState) -> None:
    feeds_file = console_state.rules / "feeds.yaml"
    hostile = "<script>alert(1)</script> Asia & Wire"
    text = feeds_file.read_text(encoding="utf-8").replace("title: Asia Wire", f"title: '{hostile}'")
    feeds_file.write_text(text, encoding="utf-8")
    with make_client(console_state) as client:
        response = client.get("/feeds")
    doc = lxml.html.fromstring(response.text)
    assert doc.xpath("//tr[@data-feed='asia-wire']/td[1]/a/text()") == [hostile]
    assert not doc.xpath("//main//script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_no_feeds_says_how_to_add_one(console_state: DemoState) -> None:
    (console_state.rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    with make_client(console_state) as client:
        response = client.get("/feeds")
    assert response.status_code == 200
    empty = lxml.html.fromstring(response.text).xpath("//p[@id='feeds-empty']")[0]
    assert "monitor feeds add URL" in empty.text_content()


def test_a_broken_feeds_file_is_named_with_its_line(console_state: DemoState) -> None:
    feeds_file = console_state.rules / "feeds.yaml"
    feeds_file.write_text("feeds:\n  - url: http://127.0.0.1/x\n    intervall: 5m\n")
    with make_client(console_state) as client:
        response = client.get("/feeds")
    assert response.status_code == 500
    message = lxml.html.fromstring(response.text).xpath("//p[@role='alert']/text()")[0]
    assert "feeds.yaml:3:5: unknown key 'intervall'" in message


@on_both
def test_htmx_refreshes_the_table_alone_in_the_same_order(client: TestClient) -> None:
    whole = lxml.html.fromstring(client.get("/feeds?sort=items&order=desc").text)
    [live] = whole.xpath("//section[@id='feeds-live']")
    assert live.get("hx-get") == "/feeds?sort=items&order=desc"
    assert live.get("hx-trigger") == "every 30s"
    response = client.get(live.get("hx-get"), headers={"hx-request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and "<h1" not in response.text
    fragment = lxml.html.fragment_fromstring(response.text, create_parent="div")
    assert [r.get("data-feed") for r in fragment.xpath(".//tbody/tr")] == [
        r.get("data-feed") for r in live.xpath(".//tbody/tr")
    ]

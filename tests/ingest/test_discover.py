"""Looking at a URL before it becomes a feed: the feeds an HTML page names, the format of a
feed, and one fetch of a real local server described without storing anything."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from importlib import resources

import pytest

from monitor.errors import MonitorError
from monitor.ingest.discover import FeedLink, feed_format, feed_links, find_feed, probe_feeds
from monitor.models import Feed, FetchStatus, Settings
from tests.support.feedserver import FeedServer, serve, status

SETTINGS = Settings(connect_timeout=2, read_timeout=2, total_timeout=5)
HTML = "text/html; charset=utf-8"
# Fixture: an RSS 2.0 feed titled "Test": two dated items, the newer of 2 Dec 2025 08:00 UTC,
# and one without a date. Expect: format RSS 2.0, 3 items, that newest date.
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test</title><link>https://news.example.org/</link>
<item><guid>a1</guid><title>PLA drills near the Taiwan Strait</title>
  <pubDate>Mon, 01 Dec 2025 23:00:00 GMT</pubDate></item>
<item><guid>a2</guid><title>北朝鮮がミサイル発射</title>
  <pubDate>Tue, 02 Dec 2025 08:00:00 GMT</pubDate></item>
<item><guid>a3</guid><title>Undated</title></item>
</channel></rss>
""".encode()

PAGE = """\
<!DOCTYPE html>
<!-- Fixture: a news site's home page as CMSs write it. Expect: the RSS, Atom and JSON Feed
     links in page order, relative ones resolved against <base href>, once each; the
     stylesheet, the WordPress API link, the javascript: link and the duplicate left out. -->
<html><head>
<meta charset="utf-8">
<base href="https://news.example.org/world/">
<title>News</title>
<link rel="stylesheet" type="text/css" href="/style.css">
<LINK REL="alternate" TYPE="application/rss+xml" TITLE="World &amp; Asia" HREF="rss.xml">
<link rel="alternate feed" type="application/atom+xml; charset=utf-8" href="/atom.xml">
<link rel="alternate" type="application/feed+json" title="JSON" href="//cdn.example.org/f.json">
<link rel="alternate" type="application/json" href="https://news.example.org/wp-json/wp/v2/pages/2">
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="application/rss+xml" href="https://NEWS.example.org:443/world/rss.xml">
<link rel="alternate" hreflang="ja" href="https://news.example.org/ja/">
</head><body><p>Tag soup <b>is <i>fine</b></i></p></body></html>
"""


def test_feed_links_reads_alternate_links_as_browsers_do() -> None:
    assert feed_links(PAGE, "https://news.example.org/") == (
        FeedLink("https://news.example.org/world/rss.xml", "RSS", "World & Asia"),
        FeedLink("https://news.example.org/atom.xml", "Atom", None),
        FeedLink("https://cdn.example.org/f.json", "JSON Feed", "JSON"),
    )


def test_relative_links_resolve_against_the_page_without_a_base() -> None:
    page = '<link rel="alternate" type="application/rss+xml" href="../feed?x=1&amp;y=2">'
    assert feed_links(page, "https://a.example.org/news/today/") == (
        FeedLink("https://a.example.org/news/feed?x=1&y=2", "RSS"),
    )


def test_a_page_without_feed_links_has_none() -> None:
    assert feed_links("<html><head><title>x</title></head></html>", "https://a.org/") == ()
    assert feed_links("not html at all < > &", "https://a.org/") == ()


def test_a_declaration_the_parser_gives_up_on_keeps_the_links_before_it() -> None:
    # Fixture: a feed link, then markup html.parser stops at with an AssertionError.
    page = '<link rel="alternate" type="application/rss+xml" href="/a.xml"><![ broken ]]>'
    assert feed_links(page, "https://a.org/") == (FeedLink("https://a.org/a.xml", "RSS"),)


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("asia-wire.xml", "application/rss+xml", "RSS 2.0"),
        ("pacific-ledger.atom", "application/atom+xml", "Atom 1.0"),
        ("toto-shimpo.rdf", "application/rdf+xml; charset=Shift_JIS", "RSS 1.0"),
        ("monsoon-dispatch.json", "application/feed+json", "JSON Feed 1.1"),
    ],
)
def test_feed_format_names_each_kind(name: str, content_type: str, expected: str) -> None:
    body = (resources.files("monitor") / "data" / "demo" / name).read_bytes()
    assert feed_format(body, content_type) == expected


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_probe_describes_what_each_url_holds() -> None:
    with FeedServer() as server:
        feed = server.add("/feed.xml", serve(FEED))
        page = server.add("/", serve(PAGE.encode(), HTML))
        missing = server.add("/missing", status(404))
        busy = server.add("/busy", status(503))
        down = f"http://127.0.0.1:{_closed_port()}/feed.xml"
        urls = [("feed", feed), ("page", page), ("missing", missing), ("busy", busy)]
        feeds = [Feed(id=fid, url=url) for fid, url in [*urls, ("down", down)]]
        found = await probe_feeds(feeds, SETTINGS)
    by_id = {probe.feed_id: probe for probe in found}
    assert [probe.feed_id for probe in found] == ["feed", "page", "missing", "busy", "down"]
    ok = by_id["feed"]
    assert (ok.status, ok.format, ok.title, ok.items) == (FetchStatus.OK, "RSS 2.0", "Test", 3)
    assert ok.newest == datetime(2025, 12, 2, 8, tzinfo=UTC)
    assert ok.is_feed and not ok.unreachable and ok.problem is None
    html = by_id["page"]
    assert html.page and html.status is FetchStatus.ERROR and len(html.links) == 3
    assert "HTML page" in (html.problem or "")
    assert by_id["missing"].http_status == 404 and not by_id["missing"].unreachable
    assert by_id["busy"].unreachable and by_id["down"].unreachable
    assert "connection refused" in (by_id["down"].problem or "")


async def test_find_feed_follows_the_one_link_of_a_page() -> None:
    with FeedServer() as server:
        feed = server.add("/news/rss.xml", serve(FEED))
        link = '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
        page = server.add("/news/", serve(f"<html><head>{link}</head></html>".encode(), HTML))
        found = await find_feed(page, SETTINGS)
        assert [r.path for r in server.requests] == ["/news/", "/news/rss.xml"]
    assert (found.url, found.title, found.kind, found.page) == (feed, "Test", "RSS 2.0", page)


async def test_find_feed_refuses_a_page_naming_a_broken_feed() -> None:
    with FeedServer() as server:
        server.add("/gone.xml", status(410))
        link = '<link rel="alternate" type="application/atom+xml" href="/gone.xml">'
        page = server.add("/", serve(f"<html><head>{link}</head></html>".encode(), HTML))
        with pytest.raises(MonitorError) as caught:
            await find_feed(page, SETTINGS)
    assert "names the feed" in str(caught.value) and "410" in str(caught.value)

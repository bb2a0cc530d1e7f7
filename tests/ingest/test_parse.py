"""The parse stage on self-describing fixtures (tests/fixtures/feeds: each says what it is and
what is expected), on generated documents, and against a real local HTTP server that must
never be contacted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.ingest.charset import decode
from monitor.ingest.normalize import normalize, plain_text
from monitor.ingest.parse import parse
from monitor.models import Feed, ParsedFeed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
URL = "https://feeds.example.org/asia/feed.xml"
RSS = {"content-type": "application/rss+xml"}
NOW = datetime(2025, 12, 4, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_fixture(name: str, headers: dict[str, str] | None = None) -> ParsedFeed:
    return parse("fx", fixture(name), RSS if headers is None else headers, URL)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- formats --------------------------------------------------------------------------------


def test_rss091() -> None:
    feed = parse_fixture("rss091.xml")
    assert feed.language == "en-us"
    assert [e.title for e in feed.entries] == [
        "Seoul and Tokyo agree to resume shuttle diplomacy",
        "Coast guards hold talks on East China Sea incidents",
    ]
    first = feed.entries[0]
    assert first.link == "http://www.example.com/asia/shuttle-diplomacy"
    assert (first.guid, first.published, first.updated) == (None, None, None)
    assert feed.warning is None


def test_rss10_rdf() -> None:
    feed = parse_fixture("rss10.rdf")
    first = feed.entries[0]
    assert len(feed.entries) == 2
    assert first.guid == first.link == "https://news.example.jp/en/2025/12/01/senkaku"
    assert first.title == "Japan protests Chinese coast guard entry near the Senkakus"
    assert first.updated == utc(2025, 12, 1, 1, 30)
    assert first.language == feed.language == "ja"


def test_rss20_fields_links_and_original_html() -> None:
    feed = parse_fixture("rss20.xml")
    assert feed.title == "Example World Service: Asia"
    assert feed.link == "https://www.example.org/world/asia/"
    first, second, third = feed.entries
    assert first.guid == "asia-2025-1201-001"
    # Relative to the channel link (the site), not to the feed's own host.
    assert first.link == "https://www.example.org/world/asia/strait-drills?utm_source=rss&id=7"
    assert first.published == utc(2025, 12, 1, 2, 15)
    assert first.content is not None and first.summary is not None
    assert 'href="https://www.example.org/world/asia/background"' in first.content
    # The original HTML is kept as the feed gave it (renderers sanitise); the plain text
    # made from it by normalize drops the script.
    assert "<script>track()</script>" in first.content
    assert "track()" not in plain_text(first.content)
    # A plain-text title is escaped, so a literal "<" survives the HTML stripping later.
    assert second.title == "Poll: 3 &lt; 4 in ten Koreans back a summit with Pyongyang"
    assert second.published == utc(2025, 11, 30, 20, 0)
    assert second.content is None
    assert third.author == "Staff Correspondent"
    assert third.language == "en-GB"


def test_atom03() -> None:
    (entry,) = parse_fixture("atom03.xml").entries
    assert entry.guid == "tag:example.net,2025:asean-1"
    assert entry.published == utc(2025, 11, 30, 23, 0)
    assert entry.updated == utc(2025, 12, 1, 1, 0)
    assert entry.author == "Desk Editor"
    assert entry.summary == "Talks <em>stalled</em> over maritime boundaries."


def test_atom10_languages_and_xml_base() -> None:
    feed = parse_fixture("atom10.xml")
    first, second = feed.entries
    assert feed.language == "ko"
    assert feed.link == "https://example.kr/"
    assert first.link == "https://example.kr/en/news/dmz-talks"
    assert first.title == "Talks at the <b>DMZ</b>"
    assert first.language == "en"
    assert first.content is not None
    assert 'href="https://example.kr/en/places/panmunjom"' in first.content
    assert (first.published, first.updated) == (utc(2025, 12, 2, 2), utc(2025, 12, 2, 3))
    assert second.language == "ko"
    assert second.title == "통일부, 남북 연락채널 복원 촉구"
    assert second.content is None and second.summary is not None


def test_json_feed_11() -> None:
    feed = parse_fixture("jsonfeed11.json", {"content-type": "application/feed+json"})
    first, second, third = feed.entries
    assert (feed.title, feed.link, feed.language) == (
        "Example Taiwan Briefing",
        "https://example.tw/",
        "zh-TW",
    )
    assert first.guid == "https://example.tw/en/2025/12/strait"
    assert first.title == "Coast guard tracks vessels &lt;near&gt; Kinmen &amp; Matsu"
    assert first.content is not None and "<script>alert(1)</script>" in first.content  # original
    assert "alert" not in plain_text(first.content)
    assert 'href="https://example.tw/en/maps/kinmen"' in first.content
    assert (first.published, first.updated) == (utc(2025, 12, 3), utc(2025, 12, 3, 6))
    assert (first.author, first.language) == ("Lin Writer", "en")
    assert second.guid == "42"
    assert second.content == "外交部表示，將與友邦及理念相近國家 &lt;深化&gt; 合作。"
    assert second.language == "zh-TW"
    assert third.link == "https://other.example.com/analysis/strait"
    assert feed.warning is None


def test_json_feed_recognised_without_content_type_and_v1_author() -> None:
    body = b"""{"version": "https://jsonfeed.org/version/1", "items": [
        {"id": "a", "title": "Envoy visits Seoul", "author": {"name": "Desk"},
         "date_published": "2025-12-01T09:00:00"}, "not an item"]}"""
    feed = parse("fx", body, {}, URL)
    (entry,) = feed.entries
    assert entry.author == "Desk"
    assert entry.published == utc(2025, 12, 1, 9)  # no offset: taken as UTC
    assert feed.warning == "1 items are not JSON objects and were skipped"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not valid JSON"),
        (b'{"status": "error"}', "not a JSON Feed"),
        (b"[1, 2]", "not a JSON Feed"),
    ],
)
def test_json_that_is_no_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse("jf", body, {"content-type": "application/json"}, URL)
    assert info.value.feed_id == "jf"


# --- legacy East Asian encodings ------------------------------------------------------------

SJIS_TITLE = "北朝鮮、日本海に弾道ミサイル発射\u3000防衛省が発表"
EUCJP_TITLE = "日中外相が電話会談、尖閣周辺の海警船に懸念伝達"


@pytest.mark.parametrize(
    ("name", "content_type", "title"),
    [
        ("shift_jis.xml", "application/rss+xml", SJIS_TITLE),  # XML declaration only
        ("shift_jis.xml", "text/xml", SJIS_TITLE),  # text/xml without charset: not us-ascii
        ("euc_jp.xml", "application/rss+xml; charset=EUC-JP", EUCJP_TITLE),  # both agree
        (
            "big5.xml",
            "application/rss+xml; charset=big5",
            "國防部：共機逾越台海中線\u3000國軍嚴密監控",
        ),
        ("gb2312.xml", "application/rss+xml", "安东尼奥\u00b7古特雷斯呼吁中日通过对话缓和紧张局势"),
        (
            "euc_kr.xml",
            "text/xml; charset=euc-kr",
            "북한, 동해상으로 탄도미사일 발사…합참 “대비태세 유지”",
        ),
    ],
)
def test_legacy_encodings_decode_exactly(name: str, content_type: str, title: str) -> None:
    feed = parse_fixture(name, {"content-type": content_type})
    assert feed.entries[0].title == title
    assert feed.warning is None


def test_shift_jis_keeps_the_wave_dash() -> None:
    # Strict shift_jis first: cp932 would turn 〜 (U+301C) into a full-width tilde.
    assert parse_fixture("shift_jis.xml").entries[1].title == "日中首脳会談、来月10〜12日で調整"


def test_gb2312_label_is_read_as_gb18030() -> None:
    # GB2312 has neither 臺 nor 灣; feeds labelled gb2312 are GBK in practice.
    assert parse_fixture("gb2312.xml").entries[1].title == "国立臺灣大学学者谈两岸局势"


def test_server_default_latin1_yields_to_the_xml_declaration() -> None:
    feed = parse_fixture("shift_jis.xml", {"content-type": "text/xml; charset=ISO-8859-1"})
    assert feed.entries[0].title == SJIS_TITLE
    assert feed.warning is not None and "iso-8859-1" in feed.warning


def test_wrong_http_charset_falls_back_to_the_declaration_with_a_warning() -> None:
    feed = parse_fixture("euc_jp.xml", {"content-type": "application/xml; charset=utf-8"})
    assert feed.entries[0].title == EUCJP_TITLE
    assert feed.warning == (
        "the feed is declared as utf-8 (HTTP Content-Type charset) but is euc_jp; read as euc_jp"
    )


def rss_bytes(title: str, codec: str, label: str) -> bytes:
    doc = f'<?xml version="1.0" encoding="{label}"?><rss version="2.0"><channel><title>t</title>'
    return (doc + f"<item><title>{title}</title></item></channel></rss>").encode(codec)


@pytest.mark.parametrize(
    ("title", "codec", "label"),
    [
        ("①台湾海峡で演習", "cp932", "Shift_JIS"),  # NEC special characters
        ("①台湾海峡で演習", "cp932", "windows-31j"),  # a WHATWG label Python lacks
        ("똠방각하, 북한 문제 언급", "cp949", "euc-kr"),  # a syllable only UHC has
        ("歐盟制裁金額達50億€", "cp950", "big5"),  # the euro sign only cp950 has
    ],
)
def test_vendor_extensions_decode_through_the_superset(title: str, codec: str, label: str) -> None:
    text, warning = decode(rss_bytes(title, codec, label), "")
    assert f"<title>{title}</title>" in text
    assert warning is None


def test_byte_order_mark_beats_declarations() -> None:
    body = "\ufeff".encode("utf-16-le") + '<?xml version="1.0"?><rss>台湾</rss>'.encode("utf-16-le")
    text, warning = decode(body, "text/xml; charset=iso-8859-1")
    assert text.endswith("<rss>台湾</rss>") and warning is None


@pytest.mark.parametrize("label", ["utf-16", "base64", "no-such-codec"])
def test_impossible_declared_encodings_are_ignored(label: str) -> None:
    text, warning = decode(rss_bytes("台湾", "utf-8", label), "")
    assert "<title>台湾</title>" in text
    assert warning is not None and f"declared as {label}" in warning


def test_undeclared_non_utf8_is_replaced_and_reported() -> None:
    text, warning = decode("<rss><title>台湾</title></rss>".encode("euc_jp"), "")
    assert "\ufffd" in text
    assert warning is not None and "not valid UTF-8" in warning


def test_utf8_mislabelled_by_a_latin1_server_default() -> None:
    feed = parse(
        "fx",
        rss_bytes("台湾海峡", "utf-8", "utf-8"),
        {"content-type": "text/xml; charset=iso-8859-1"},
        URL,
    )
    assert feed.entries[0].title == "台湾海峡"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json", ""])
def test_a_feed_under_a_wrong_content_type_parses_cleanly(content_type: str) -> None:
    feed = parse_fixture("rss20.xml", {"content-type": content_type})
    assert len(feed.entries) == 3
    assert feed.warning is None


# --- broken documents -----------------------------------------------------------------------


def test_bozo_feed_still_yields_entries() -> None:
    feed = parse_fixture("bozo_entity.xml")
    assert [e.title for e in feed.entries] == [
        "Pyongyang\u00a0rejects joint statement",
        "Communiqué from the G7 foreign ministers",
    ]
    assert feed.warning is not None and "undefined entity" in feed.warning


def test_truncated_feed_keeps_its_complete_entries() -> None:
    feed = parse_fixture("truncated.xml")
    titles = [e.title for e in feed.entries]
    assert titles[:2] == [
        "UN Security Council meets on North Korea launches",
        "China and Japan trade protests over remarks",
    ]
    assert feed.warning is not None and "not well-formed XML" in feed.warning


def test_blank_lines_before_the_xml_declaration_are_forgiven() -> None:
    feed = parse("fx", b"\n\n  " + rss_bytes("Talks resume", "utf-8", "utf-8"), RSS, URL)
    assert [e.title for e in feed.entries] == ["Talks resume"]
    assert feed.warning is None


def test_html_page_names_its_feed_in_the_hint() -> None:
    with pytest.raises(ParseError) as info:
        parse("asia", fixture("html_page.html"), {"content-type": "text/html"}, URL)
    error = info.value
    assert error.message == "the URL returned an HTML page, not a feed"
    assert error.hint is not None and "https://feeds.example.org/rss/asia.xml" in error.hint
    assert str(error).startswith("feed asia: ")


def test_html_page_without_a_feed_link() -> None:
    page = b"<!doctype html><html><body><p>Welcome</p></body></html>"
    with pytest.raises(ParseError, match="HTML page") as info:
        parse("fx", page, {}, URL)
    assert info.value.hint == 'look for a <link rel="alternate"> feed URL on that page'


@pytest.mark.parametrize("name", ["garbage.bin"])
def test_garbage_is_not_a_feed(name: str) -> None:
    with pytest.raises(ParseError, match="the document is not a feed"):
        parse_fixture(name, {"content-type": "application/octet-stream"})


FEED_START = b'<?xml version="1.0" encoding="shift_jis"?><rss version="2.0"><channel><item>'


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda tail: FEED_START + tail))
def test_any_bytes_give_a_feed_or_a_parse_error(body: bytes) -> None:
    # In a worker pool any other exception would cost more than this feed.
    try:
        result = parse("fuzz", body, {"content-type": "text/xml; charset=big5"}, URL)
    except ParseError as error:
        assert error.feed_id == "fuzz"
    else:
        assert isinstance(result, ParsedFeed)


def test_empty_body() -> None:
    with pytest.raises(ParseError, match="empty body"):
        parse("fx", b"  \n", RSS, URL)


# --- safety and scale -----------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"SECRET")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()
    thread.join()


def test_external_entities_and_dtds_are_never_fetched(recorder: tuple[int, list[str]]) -> None:
    port, hits = recorder
    body = fixture("external_entity.xml").replace(b"PORT", str(port).encode())
    feed = parse("fx", body, RSS, URL)
    (entry,) = feed.entries
    assert entry.title is not None
    assert "SECRET" not in entry.title and "lol" * 10 not in entry.title
    assert hits == []


def test_ten_thousand_entries_come_out_unique() -> None:
    # Half the entries have a guid, half only a link: both must give distinct item guids.
    items = "".join(
        f"<item><title>Report {i}</title><guid>urn:report:{i}</guid></item>"
        if i % 2
        else f"<item><title>Report {i}</title><link>/reports/{i}</link></item>"
        for i in range(10_000)
    )
    body = f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()
    parsed = parse("big", body, RSS, URL)
    items_out = normalize(Feed(id="big", url=URL), parsed, URL, NOW)
    assert len(parsed.entries) == len(items_out) == 10_000
    assert len({item.guid for item in items_out}) == 10_000


def test_runs_in_a_worker_process() -> None:
    # Production parses in a process pool: arguments and result must cross process borders.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        remote = pool.submit(parse, "fx", fixture("rss20.xml"), RSS, URL).result(timeout=60)
    assert remote == parse_fixture("rss20.xml")


@pytest.mark.parametrize(
    ("markup", "relative"),
    [
        ('<a href="https://example.org/a">x</a>', False),
        ("<a href='http://example.org/a'>x</a>", False),
        ('<a href = "mailto:desk@example.org">x</a>', False),
        ('<img src="/img/map.png">', True),
        ('<a href="../background">x</a>', True),
        ("<a href=story.html>x</a>", True),
    ],
)
def test_only_relative_references_send_html_to_the_resolver(markup: str, relative: bool) -> None:
    from monitor.ingest.parse import _RELATIVE_REF

    assert bool(_RELATIVE_REF.search(markup)) is relative

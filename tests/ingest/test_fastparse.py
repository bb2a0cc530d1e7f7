"""The fast parse path (ingest/fastparse, lxml) against feedparser: on every fixture, on
hand-made edge cases and on generated documents, both paths give the same `ParsedFeed` (or the
same error), or the fast path declines and feedparser answers. Never a different answer.
Hostile XML (external entities, entity expansion, huge trees) stays harmless on both paths."""

from __future__ import annotations

import time
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.ingest import parse as parse_module
from monitor.ingest.charset import decode
from monitor.ingest.fastparse import read_feed
from monitor.ingest.parse import parse
from monitor.models import ParsedFeed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
URL = "https://feeds.example.org/asia/feed.xml"
XML = {"content-type": "application/xml"}
DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
CONTENT = 'xmlns:content="http://purl.org/rss/1.0/modules/content/"'


def outcome(body: bytes, headers: dict[str, str], *, fast: bool) -> ParsedFeed | str:
    try:
        return parse("fx", body, headers, URL, fast=fast)
    except ParseError as exc:
        return f"ParseError: {exc}"


def taken(body: bytes, headers: dict[str, str]) -> bool:
    """Whether the fast path answers (rather than declining to feedparser)."""
    content_type = headers.get("content-type", "")
    return read_feed(decode(body, content_type)[0], headers.get("content-language", "")) is not None


def assert_same(body: bytes, headers: dict[str, str] = XML) -> bool:
    """Both paths agree; returns whether the fast path took the document."""
    assert outcome(body, headers, fast=True) == outcome(body, headers, fast=False)
    return taken(body, headers)


def rss(items: str, channel: str = "", root: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {root}><channel>'
        f"<title>Desk</title><link>https://www.example.org/asia/</link>{channel}"
        f"{items}</channel></rss>"
    ).encode()


def atom(entries: str, feed: str = "", root: str = "") -> bytes:
    return (
        f'<feed xmlns="http://www.w3.org/2005/Atom" {root}><title>Desk</title>'
        f"<id>tag:example.org,2025:desk</id>{feed}{entries}</feed>"
    ).encode()


# --- fixtures -------------------------------------------------------------------------------

TAKEN = {
    "big5.xml", "duplicate_guids.xml", "euc_jp.xml", "euc_kr.xml", "gb2312.xml",
    "missing_fields.xml", "rss10.rdf", "rss20.xml", "shift_jis.xml",
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(FIXTURES.iterdir()), ids=lambda p: p.name)
def test_every_fixture_same_or_declined(path: Path) -> None:
    json = path.suffix == ".json"
    headers = {"content-type": "application/feed+json"} if json else XML
    # The plain RSS fixtures must really take the fast path, or this proves nothing.
    assert assert_same(path.read_bytes(), headers) is (path.name in TAKEN)


def test_parse_uses_the_fast_path_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (FIXTURES / "rss20.xml").read_bytes()
    expected = parse("fx", body, XML, URL, fast=False)

    def no_feedparser(text: str, language: str) -> object:
        raise AssertionError("feedparser was called for a plain RSS 2.0 feed")

    monkeypatch.setattr(parse_module, "_feedparser", no_feedparser)
    assert parse("fx", body, XML, URL) == expected
    with pytest.raises(ParseError, match="could not be parsed"):  # declined -> feedparser
        parse("fx", (FIXTURES / "atom03.xml").read_bytes(), XML, URL)


# --- hand-made edge cases -------------------------------------------------------------------

DATES = [
    "Mon, 01 Dec 2025 09:00:00 +0930", "Mon, 01 Dec 2025 09:00:00 EST", "01 Dec 2025 09:00 UT",
    "Mon, 1 Dec 2025 09:00:00 GMT", "Mon, 01 Dec 2025 09:00:00 Z", "Mon, 01 Dec 2025 9:00 PDT",
    "Mon, 01 Dec 2025 09:00:00 -1245", "Mon, 01 Dec 25 09:00:00 +0000", "Monday, 01-Dec-25",
    "2025-12-01T09:00:00+05:45", "2025-12-01T09:00:00Z", "2025-12-01", "2025-12-01T09:00Z",
    "2025-12-01T09:00:00.123-03:30", "20251201T090000Z", "not a date", "", "  ",
    "Mon, 31 Feb 2025 09:00:00 +0000", "Mon, 01 Dec 2025 24:00:00 +0000",
]  # fmt: skip


@pytest.mark.parametrize("date", DATES)
def test_dates_rfc822_iso_and_odd_zones(date: str) -> None:
    items = f"<item><title>t</title><pubDate>{date}</pubDate><dc:date>{date}</dc:date></item>"
    assert assert_same(rss(items, root=DC))
    assert assert_same(atom(f"<entry><id>x</id><updated>{date}</updated></entry>"))


TAKEN_CASES = {
    "cdata": rss("<item><title><![CDATA[A <b>bold</b> move]]></title>"
                 "<description><![CDATA[<p>Drills &amp; <a href='/x'>more</a></p>]]>"
                 "</description></item>"),
    "entities": rss("<item><title>Seoul &amp; Tokyo &lt;b&gt;agree&lt;/b&gt; &#x4E2D;&#22269;"
                    "</title><description>&lt;p&gt;A&amp;amp;B &amp;nbsp; &#169;&lt;/p&gt;"
                    "</description><link>https://e.org/a?x=1&amp;y=2&amp;amp;z=3</link></item>"),
    "html-guess": rss("<item><title>3 &lt; 4 &amp;amp; tea</title></item>"
                      "<item><title>&lt;b&gt;bold&lt;/b&gt;</title></item>"
                      "<item><title>&lt;blink&gt;odd&lt;/blink&gt;</title></item>"),
    "relative-links": rss("<item><title>r</title><link>/world/story?id=1</link>"
                          "<description>&lt;a href=\"../up\"&gt;up&lt;/a&gt;</description>"
                          "</item>"),
    "guids": rss("<item><guid>https://e.org/permalink</guid></item>"
                 "<item><guid isPermaLink='false'>id-2</guid></item>"
                 "<item><guid>http:///odd//x</guid><link>https://e.org/3</link></item>"
                 "<item><link>https://e.org/4</link><guid isPermaLink='true'>g4</guid></item>"),
    "empty-elements": rss("<item><title/><description></description><link/><guid/>"
                          "<pubDate/><author/></item><item/>"),
    "missing-dates": rss("<item><title>No date</title></item>"),
    "authors-and-content": rss(
        "<item><title>a</title><author>desk@example.org (Desk)</author>"
        "<content:encoded><![CDATA[<p>full</p>]]></content:encoded></item>"
        "<item><title>b</title><dc:creator>  Kim  </dc:creator>"
        "<content:encoded>&lt;p&gt;x&lt;/p&gt;</content:encoded><description>d</description>"
        "</item>", root=f"{DC} {CONTENT}"),
    "languages": rss("<item xml:lang='ja_JP'><title>日本</title></item>"
                     "<item><title xml:lang=''>none</title></item>",
                     channel="<language>en-GB</language>", root='xml:lang="en"'),
    "mojibake-and-c1": rss("<item><title>CafÃ© &#x93;quoted&#x94;</title>"
                           "<description>Ã¤ and \u4e2d</description></item>"),
    "whitespace": rss("<item>\n <title>\n  Spaced\u3000out \n</title>\n"
                      " <link>\n https://e.org/w \n</link>\n</item>"),
    "comments-and-pis": rss("<item><title>Ti<!-- c -->tle<?pi x?></title></item>"),
    "unknown-namespace": rss("<item><title>u</title><x:extra xmlns:x='urn:x'>1</x:extra>"
                             "<x:thing xmlns:x='urn:x' a='1'><x:deep/></x:thing></item>"),
    "image-and-atom-self": rss("<item><title>i</title></item>", channel=(
        "<image><title>Logo</title><url>https://e.org/l.png</url><link>https://e.org/</link>"
        "</image><atom:link href='https://e.org/feed' rel='self' type='application/rss+xml'"
        " xmlns:atom='http://www.w3.org/2005/Atom'/>")),
    "rdf": (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            b' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            b"<channel rdf:about='https://e.jp/'><title>J</title><link>https://e.jp/</link>"
            b"<dc:language>ja</dc:language></channel><item rdf:about='https://e.jp/1'>"
            b"<title>T</title><link>https://e.jp/1</link><dc:date>2025-12-01T09:00+09:00"
            b"</dc:date></item></rdf:RDF>"),
    "atom-types": atom(
        "<entry><id>tag:a,1</id><title type='html'>&lt;b&gt;B&lt;/b&gt;</title>"
        "<summary>1 &lt; 2</summary><content type='html'>&lt;p&gt;c&lt;/p&gt;</content>"
        "<author><name>Ann</name><email>ann@e.org</email></author>"
        "<link href='https://e.org/a'/><link rel='enclosure' href='https://e.org/a.mp3'/>"
        "<link rel='alternate' type='application/pdf' href='https://e.org/a.pdf'/>"
        "<published>2025-12-01T00:00:00Z</published></entry>"
        "<entry xml:lang='ko'><id>https://e.org/id-as-link</id><title>제목</title>"
        "<content>plain &amp; text</content><author><name>Kim</name><uri>https://e.org"
        "</uri></author></entry>",
        feed="<link rel='alternate' href='https://e.org/'/>", root='xml:lang="en"'),
    "atom-feed-id-link": atom("<entry><id>urn:x</id><title>t</title></entry>"),
    "rdf-references": (
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b'<channel rdf:about="https://e.jp/"><title>J</title><link>https://e.jp/</link>'
        b'<image rdf:resource="https://e.jp/i.png"/><items><rdf:Seq><rdf:li'
        b' rdf:resource="https://e.jp/1"/></rdf:Seq></items><dc:creator>x</dc:creator>'
        b'</channel><image rdf:about="https://e.jp/i.png"><title>Logo</title>'
        b'<url>https://e.jp/i.png</url></image><item rdf:about="https://e.jp/1"><title>T'
        b'</title><dc:creator>K</dc:creator></item><textinput rdf:about="https://e.jp/s">'
        b"<title>S</title><name>q</name></textinput><dc:language>fr</dc:language>"
        b"<title>Not the feed's</title></rdf:RDF>"
    ),
    "upper-case-names": rss("<Item><Title>a</Title><PUBDATE>Mon, 01 Dec 2025 09:00:00 GMT"
                            "</PUBDATE></Item>"),
    "rss-type-attributes": rss("<item><title type='html'>&lt;b&gt;a&lt;/b&gt;</title>"
                               "<description type='text'>x &lt; y</description></item>"),
    "plain-lang-attributes": rss("<item lang=''><title>a</title></item><item><title "
                                 "lang='de_DE'>b</title></item>", root='lang="fr"'),
    "odd-permalink-values": rss("<item><guid isPermaLink='True'>x</guid></item>"
                                "<item><guid isPermaLink='TRUE'>y</guid></item>"),
    "cdata-link": rss("<item><link><![CDATA[https://e.org/?a=1&b=2&amp;c=3&foo;]]></link>"
                      "</item>"),
    "atom-authors-and-links": atom(
        "<entry><id>1</id><author><email>a@b.c</email></author>"
        "<link rel='self' href='https://e.org/s'/></entry>"
        "<entry><id>2</id><author><name> N </name><email> e@f.g </email></author>"
        "<link type='application/xhtml+xml' href='https://e.org/x'/>"
        "<link href='https://e.org/y' type='TEXT/HTML'/></entry>"
        "<entry><id>4</id><link href='https://e.org/h' type='html'/></entry>"
        "<entry><id>5</id><link rel='Alternate' href='https://e.org/r'/></entry>"
        "<entry><id>3</id><author><uri>https://x</uri></author><link>text</link></entry>",
        feed="<link rel='self' href='https://e.org/feed'/>"),
    "empty-documents": b'<rss version="2.0"><channel></channel></rss>',
    "xml-1.1-and-standalone": (b'<?xml version="1.1" standalone="yes"?><rss version="2.0">'
                               b"<channel><item><title>a</title></item></channel></rss>"),
}  # fmt: skip

DECLINED_CASES = {
    "xml-base": atom("<entry xml:base='https://e.org/en/'><id>x</id>"
                     "<link href='news/1'/><content type='html'>&lt;a href='p'&gt;p&lt;/a&gt;"
                     "</content></entry>"),
    "inline-xhtml": atom("<entry><id>x</id><content type='xhtml'><div "
                         "xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></div></content></entry>"),
    "markup-in-description": rss("<item><description><p>raw</p></description></item>"),
    "two-titles": rss("<item><title></title><title>second</title></item>"),
    "media-title": rss("<item><media:title xmlns:media='http://search.yahoo.com/mrss/'>m"
                       "</media:title></item>"),
    "rss091": b'<rss version="0.91"><channel><title>t</title><item><title>x</title></item>'
              b"</channel></rss>",
    "base64": atom("<entry><id>x</id><content type='text/plain' mode='base64'>aGk=</content>"
                   "</entry>"),
    "rdf-image-first": (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
                        b' xmlns="http://purl.org/rss/1.0/"><image><title>I</title></image>'
                        b"<channel><title>C</title></channel></rdf:RDF>"),
    "undeclared-prefix": rss("<item><dc:creator>x</dc:creator></item>"),
    "undefined-entity": rss("<item><title>a&nbsp;b</title></item>"),
    "title-inside-unknown": rss("<item><foo><title>deep</title></foo><title>a</title></item>"),
    "xhtml-body": rss("<item><x:body><x:p>hi</x:p></x:body></item>",
                      root="xmlns:x='http://www.w3.org/1999/xhtml'"),
    "atom-declaring-rss10": atom("<entry><title>&lt;b&gt;x&lt;/b&gt;</title></entry>",
                                 root="xmlns:r='http://purl.org/rss/1.0/'"),
    "trailing-junk": rss("<item><title>a</title></item>") + b"junk",
    "cdf-href-on-item": rss("<item href='https://e.org/x'><title>a</title></item>"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TAKEN_CASES))
def test_edge_cases_taken_and_identical(name: str) -> None:
    assert assert_same(TAKEN_CASES[name]), f"{name}: the fast path declined"


@pytest.mark.parametrize("name", sorted(DECLINED_CASES))
def test_edge_cases_declined_and_identical(name: str) -> None:
    assert not assert_same(DECLINED_CASES[name]), f"{name}: the fast path answered"


@pytest.mark.parametrize(
    ("codec", "label", "title"),
    [
        ("shift_jis", "Shift_JIS", "台湾海峡の緊張〜防衛省"),
        ("gb18030", "GB18030", "外交部发言人表示·联合国安理会"),
    ],
)
def test_cjk_after_charset_decoding(codec: str, label: str, title: str) -> None:
    text = rss(f"<item><title>{title}</title><description>{title}</description></item>").decode()
    body = text.replace('encoding="utf-8"', f'encoding="{label}"').encode(codec)
    assert assert_same(body)
    assert assert_same(body, {"content-type": f"application/rss+xml; charset={label}"})
    assert parse("fx", body, XML, URL).entries[0].title == title


def test_content_language_header() -> None:
    body = rss("<item><title>t</title></item>")
    assert assert_same(body, {**XML, "content-language": "zh_TW"})
    assert parse("fx", body, {**XML, "content-language": "zh_TW"}, URL).language == "zh-TW"


TEXT = st.text(
    st.sampled_from("ab <>&\"'/=;#x台湾북한\u3000\x93\xe9\xc3\xa9\t\n")
    | st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(title=TEXT, description=TEXT, link=TEXT, date=st.sampled_from(DATES), cdata=st.booleans())
def test_generated_rss_same_on_both_paths(
    title: str, description: str, link: str, date: str, cdata: bool
) -> None:
    body_text = f"<![CDATA[{description}]]>" if cdata and "]]>" not in description else None
    items = (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{body_text or escape(description)}</description>"
        f"<pubDate>{date}</pubDate><guid>{escape(link)}</guid></item>"
    )
    assert assert_same(rss(items))


# --- hostile XML ----------------------------------------------------------------------------


def test_external_entity_to_a_local_file_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<rss version='2.0'><channel><title>&xxe;</title><item><title>a &xxe;</title>"
        "<description>&xxe;</description></item></channel></rss>"
    ).encode()
    assert not taken(body, XML)
    for fast in (True, False):
        assert "TOP-SECRET" not in repr(outcome(body, XML, fast=fast))


def test_billion_laughs_stays_small_and_quick() -> None:
    entities = '<!ENTITY l0 "ha">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel>'
        "<title>t</title><item><title>&l9;</title><description>&l9;</description></item>"
        "</channel></rss>"
    ).encode()
    assert not taken(body, XML)
    for fast in (True, False):
        started = time.monotonic()
        result = outcome(body, XML, fast=fast)
        assert time.monotonic() - started < 10
        assert len(repr(result)) < 100_000  # 10^9 "ha"s were never expanded


def test_huge_tree_is_declined_and_harmless() -> None:
    deep = "<x>" * 5_000 + "deep" + "</x>" * 5_000  # libxml2 refuses depth > 256 by default
    body = rss(f"<item><title>t</title><extra>{deep}</extra></item>")
    assert not taken(body, XML)
    for fast in (True, False):
        result = outcome(body, XML, fast=fast)
        assert isinstance(result, ParsedFeed)
        assert [e.title for e in result.entries] == ["t"]


@settings(max_examples=100, deadline=None)
@given(
    title=TEXT,
    summary=TEXT,
    kind=st.sampled_from(["text", "html", "TEXT", "text/html", "text/plain"]),
    rel=st.sampled_from(["alternate", "Alternate", "self", "related", ""]),
    lang=st.sampled_from(["", "ja", "zh_TW", "en-GB"]),
    name=TEXT,
    date=st.sampled_from(DATES),
)
def test_generated_atom_same_on_both_paths(
    title: str, summary: str, kind: str, rel: str, lang: str, name: str, date: str
) -> None:
    rel_attr = f" rel='{rel}'" if rel else ""
    entries = (
        f"<entry xml:lang='{lang}'><id>{escape(title)}</id>"
        f"<title type='{kind}'>{escape(title)}</title>"
        f"<summary type='{kind}'>{escape(summary)}</summary>"
        f"<link{rel_attr} href='https://e.org/{escape(name, {chr(39): '&apos;'})}'/>"
        f"<author><name>{escape(name)}</name></author><updated>{date}</updated></entry>"
    )
    assert assert_same(atom(entries))

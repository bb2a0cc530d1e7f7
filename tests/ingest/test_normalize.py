"""The normalise stage: links, plain text, guid and date fallbacks, clamping, duplicates.

Pure logic, so most tests build `Entry` values directly; two run parsed fixtures
(tests/fixtures/feeds, each describing itself) through parse and normalize together.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.ingest.normalize import canonical_link, normalize, normalize_lang, plain_text
from monitor.ingest.parse import parse
from monitor.models import Entry, Feed, Item, ParsedFeed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
NOW = datetime(2025, 12, 4, 12, 0, tzinfo=UTC)
BASE = "https://feeds.example.org/asia/rss.xml"
FEED = Feed(id="asia", url=BASE, regions=("JP",))
BLANK = Entry(None, None, None, None, None, None, None, None, None)


def entry(**fields: Any) -> Entry:
    return replace(BLANK, **fields)


def run(*entries: Entry, link: str | None = None, language: str | None = None) -> list[Item]:
    parsed = ParsedFeed(title="t", link=link, language=language, entries=entries)
    return normalize(FEED, parsed, BASE, NOW)


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "https://Example.ORG/World/Asia?utm_source=rss&id=7&fbclid=x#comments",
            "https://example.org/World/Asia?id=7",
        ),
        (
            "https://ex.org/s?q=%E5%8F%B0&b=2&UTM_Medium=x&a=1&gclid=1&mc_cid=2&mc_eid=3",
            "https://ex.org/s?q=%E5%8F%B0&b=2&a=1",
        ),
        ("https://ex.org/a?igshid=1&ref_src=twsrc&utm_campaign=c", "https://ex.org/a"),
        ("https://ex.org/a?ref=home&source=rss", "https://ex.org/a?ref=home&source=rss"),
        ("http://ex.org:80/a", "http://ex.org/a"),
        ("https://ex.org:443/a", "https://ex.org/a"),
        ("https://ex.org:8443/a", "https://ex.org:8443/a"),
        ("HTTPS://EX.org", "https://ex.org/"),
        ("/news/1?id=2", "https://www.example.org/news/1?id=2"),
        ("../2025/story", "https://www.example.org/2025/story"),
        ("//cdn.example.net/x", "https://cdn.example.net/x"),
        ("  https://ex.org/padded \n", "https://ex.org/padded"),
        ("javascript:alert(1)", None),
        ("mailto:desk@example.org", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_link(link: str | None, expected: str | None) -> None:
    assert canonical_link(link, "https://www.example.org/world/") == expected


def test_relative_links_resolve_against_the_feed_link_made_absolute() -> None:
    (item,) = run(entry(title="t", link="story/1"), link="/world/asia/")
    assert item.link == "https://feeds.example.org/world/asia/story/1"
    (item,) = run(entry(title="t", link="story/1"))  # no feed link: the feed's own URL
    assert item.link == "https://feeds.example.org/asia/story/1"


@given(
    scheme=st.sampled_from(["http", "HTTPS"]),
    host=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}\.(org|JP|kr)", fullmatch=True),
    path=st.from_regex(r"(/[A-Za-z0-9%._~-]{0,8}){0,3}", fullmatch=True),
    params=st.lists(st.sampled_from(["utm_source=x", "id=1", "fbclid=y", "q=%E5%8F%B0", "a"])),
)
def test_canonical_link_is_idempotent(scheme: str, host: str, path: str, params: list[str]) -> None:
    once = canonical_link(f"{scheme}://{host}{path}?{'&'.join(params)}#f", BASE)
    assert once is not None
    assert canonical_link(once, BASE) == once
    assert "utm_" not in once and "fbclid" not in once and "#" not in once


# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Tai<b>wan</b> Strait</p><p>drills</p>", "Taiwan Strait drills"),
        ("A<script>track('x')</script>B<style>p {color: red}</style>C", "A B C"),
        ("US &amp; Japan &lt;agree&gt; &#x53F0;&#28286;&nbsp;ties", "US & Japan <agree> 台湾 ties"),
        ("  line one\n\t line\u3000two  ", "line one line two"),
        ("before<!-- a <b>comment</b> -->after", "before after"),
        ("3 < 4 and 5 > 2", "3 < 4 and 5 > 2"),
        ('<a href="https://x.org/?a=1&amp;b=2" title="t">link</a> text', "link text"),
        ("bell\x07 and\x1b escape", "bell and escape"),
        ("<br/>北朝鮮<br>弾道ミサイル", "北朝鮮 弾道ミサイル"),
        ("", ""),
        (None, ""),
    ],
)
def test_plain_text(markup: str | None, expected: str) -> None:
    assert plain_text(markup) == expected


@given(st.text(alphabet=st.sampled_from(list("ab <>/&;p\n\u3000台")), max_size=60))
def test_plain_text_is_one_trimmed_line(markup: str) -> None:
    text = plain_text(markup)
    assert text == text.strip()
    assert "  " not in text and "\n" not in text


def test_summary_falls_back_to_content_and_html_keeps_the_original() -> None:
    content = "<p>Full <b>story</b></p>"
    (with_both,) = run(entry(guid="1", title="t", summary="<i>Short</i>", content=content))
    assert (with_both.summary, with_both.html) == ("Short", content)
    (content_only,) = run(entry(guid="2", title="t", content=content))
    assert (content_only.summary, content_only.html) == ("Full story", content)
    (summary_only,) = run(entry(guid="3", title="t", summary="<i>Short</i>"))
    assert summary_only.html == "<i>Short</i>"


@pytest.mark.parametrize(
    ("entry_lang", "feed_lang", "expected"),
    [
        ("ja", "en", "ja"),
        ("zh_TW", None, "zh-tw"),
        (" EN-gb ", None, "en-gb"),
        (None, "ko-KR", "ko-kr"),
        ("English", "ja", "ja"),  # not a language tag: the feed's is used
        (None, None, None),
    ],
)
def test_language(entry_lang: str | None, feed_lang: str | None, expected: str | None) -> None:
    (item,) = run(entry(guid="g", title="t", language=entry_lang), language=feed_lang)
    assert item.lang == expected


def test_normalize_lang() -> None:
    assert normalize_lang("zh-Hant-TW") == "zh-hant-tw"
    assert normalize_lang("") is None


# --- guid, dates, hashes --------------------------------------------------------------------


def test_guid_fallback_chain() -> None:
    with_guid, with_link, with_text = run(
        entry(guid="  urn:a  ", link="https://ex.org/a", title="A"),
        entry(guid="   ", link="https://ex.org/b?utm_source=rss", title="B"),
        entry(title="<b>C</b>", summary="Talks in Seoul"),
    )
    assert with_guid.guid == "urn:a"
    assert with_link.guid == "https://ex.org/b"
    assert with_text.guid == hashlib.sha256(b"C\nTalks in Seoul").hexdigest()
    # Stable across polls: the same entry gives the same guid.
    assert run(entry(title="<b>C</b>", summary="Talks in Seoul"))[0].guid == with_text.guid


def test_an_entry_with_nothing_to_show_is_dropped() -> None:
    assert run(BLANK, entry(author="only an author")) == []


def test_content_hash_tells_an_edit() -> None:
    base = entry(guid="g", title="Talks", summary="In Seoul", link="https://ex.org/a#x")
    (item,) = run(base)
    assert item.content_hash == hashlib.sha256(b"Talks\nIn Seoul\nhttps://ex.org/a").hexdigest()
    (same,) = run(replace(base, title="<b>Talks</b>"))  # markup only: the text is the same
    (edited,) = run(replace(base, summary="In Seoul and Tokyo"))
    assert same.content_hash == item.content_hash != edited.content_hash


@pytest.mark.parametrize(
    ("published", "updated", "expected"),
    [
        (NOW - timedelta(days=3), NOW - timedelta(days=1), NOW - timedelta(days=3)),
        (None, NOW - timedelta(days=1), NOW - timedelta(days=1)),
        (None, None, NOW),
        # Any time ahead is clamped to first seen: a wrong clock or zone at the source must
        # neither sort the item above real news nor make it look fresh for hours.
        (NOW + timedelta(minutes=1), None, NOW),
        (NOW + timedelta(hours=9), None, NOW),  # JST written as UTC
        (NOW + timedelta(days=30), None, NOW),
        (None, NOW + timedelta(days=2), NOW),
    ],
)
def test_published_fallbacks_and_clamping(
    published: datetime | None, updated: datetime | None, expected: datetime
) -> None:
    (item,) = run(entry(guid="g", title="t", published=published, updated=updated))
    assert item.published == expected
    assert item.first_seen == NOW


def test_item_fields_pass_through() -> None:
    (item,) = run(entry(guid="g", title="t", author="  Kim Reporter "))
    assert (item.feed_id, item.author, item.regions) == ("asia", "Kim Reporter", ())


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        normalize(FEED, ParsedFeed("t", None, None, ()), BASE, datetime(2025, 1, 1))


# --- fixtures through both stages -----------------------------------------------------------


def from_fixture(name: str) -> list[Item]:
    body = (FIXTURES / name).read_bytes()
    parsed = parse("fx", body, {"content-type": "application/rss+xml"}, BASE)
    return normalize(FEED, parsed, BASE, NOW)


def test_duplicate_guids_keep_the_first() -> None:
    items = from_fixture("duplicate_guids.xml")
    assert [(i.guid, i.title) for i in items] == [
        ("dup-1", "Ministers meet on export controls"),
        ("uniq-2", "Rare earth licences delayed"),
    ]


def test_entries_without_guid_link_or_date() -> None:
    by_link, by_hash, by_guid = from_fixture("missing_fields.xml")
    assert by_link.guid == by_link.link == "https://minimal.example.com/envoys"
    assert by_hash.link is None and len(by_hash.guid) == 64
    assert by_hash.summary == "A military hotline between the two capitals was tested."
    assert (by_guid.guid, by_guid.title) == ("only-guid-3", "")
    assert all(i.published == i.first_seen == NOW for i in (by_link, by_hash, by_guid))


def test_rss20_end_to_end_text() -> None:
    first, second, _ = from_fixture("rss20.xml")
    assert first.title == "Drills near the Taiwan Strait draw warnings from Tokyo & Manila"
    assert first.summary == "Naval exercises resumed on Monday."
    assert first.link == "https://www.example.org/world/asia/strait-drills?id=7"
    assert first.lang == "en-gb"
    assert second.title == "Poll: 3 < 4 in ten Koreans back a summit with Pyongyang"
    assert second.summary == "A survey found support for talks — but little optimism."
    assert second.guid == "https://www.example.org/world/asia/korea-poll"

"""The bundled demo feeds (monitor/data/demo/): they parse, they agree with expected.yaml, and
they hold the mix the demo promises (languages, formats, a legacy encoding, a broken feed,
stories told by several outlets, noise that must not alert).

Each feed is read as bytes and handed to feedparser with the Content-Type from outlets.yaml,
exactly as the demo serves it, so a wrong charset in outlets.yaml fails here too. The JSON Feed,
which feedparser 6 cannot read, is loaded with `json` into the same shape.
"""

from __future__ import annotations

import calendar
import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import feedparser
import pytest
from ruamel.yaml import YAML

DEMO: Traversable = resources.files("monitor") / "data" / "demo"

TOPICS = frozenset(
    {
        "taiwan-strait-military",
        "taiwan-status-diplomacy",
        "china-japan-row",
        "korea-missiles",
        "un-diplomacy",
        "china-europe-outreach",
        "chip-export-controls",
        "japan-defence",
        "south-china-sea",
        "global-south-alignment",
        "south-asia-security",
        "asia-disasters",
    }
)
OUTLET_KEYS = {"id", "title", "file", "content_type", "lang", "tags", "regions", "interval"}
OPTIONAL_OUTLET_KEYS = {"broken"}  # why an outlet is broken on purpose
ITEM_KEYS = {"guid", "link", "story", "topics", "regions"}
WINDOW = (datetime(2025, 11, 20, tzinfo=UTC), datetime(2025, 12, 15, tzinfo=UTC))

# Characters that differ between the two Chinese scripts and are common in this news.
SIMPLIFIED = frozenset("国湾岛战军发对问题报关")
TRADITIONAL = frozenset("國灣島戰軍發對問題報關")

Key = tuple[str, str, str]  # (outlet id, "guid" or "link", value)


def _yaml(name: str) -> Any:
    return YAML(typ="safe").load(DEMO.joinpath(name).read_text(encoding="utf-8"))


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else ""


@pytest.fixture(scope="module")
def outlets() -> list[dict[str, Any]]:
    data = _yaml("outlets.yaml")
    assert set(data) == {"outlets"}
    result: list[dict[str, Any]] = data["outlets"]
    return result


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = _yaml("expected.yaml")
    assert set(data) == {"broken", "items"}
    return data


@pytest.fixture(scope="module")
def parsed(outlets: list[dict[str, Any]]) -> dict[str, Any]:
    """Outlet id -> feedparser result, parsed from bytes with the served Content-Type."""
    return {o["id"]: parse_outlet(o) for o in outlets}


def parse_outlet(outlet: dict[str, Any]) -> Any:
    """One outlet's file as a feedparser result (JSON Feed mapped onto the same keys)."""
    body = DEMO.joinpath(outlet["file"]).read_bytes()
    if outlet["content_type"].startswith("application/feed+json"):
        return _json_feed(body)
    return feedparser.parse(
        io.BytesIO(body), response_headers={"content-type": outlet["content_type"]}
    )


def _json_feed(body: bytes) -> Any:
    """JSON Feed mapped onto feedparser's shape: feedparser 6 cannot read it (the parse stage
    reads it with `json`), and the checks below should not care which format an outlet uses."""
    doc = json.loads(body)
    return feedparser.FeedParserDict(
        bozo=False,
        version="json" + doc["version"].removeprefix("https://jsonfeed.org/version/"),
        encoding="utf-8",
        feed=feedparser.FeedParserDict(language=doc.get("language")),
        entries=[_json_entry(item) for item in doc["items"]],
    )


def _json_entry(item: dict[str, Any]) -> Any:
    published = item.get("date_published")
    return feedparser.FeedParserDict(
        id=item["id"],
        link=item.get("url"),
        title=item.get("title", ""),
        summary=item.get("summary") or item.get("content_html") or item.get("content_text", ""),
        published_parsed=datetime.fromisoformat(published).utctimetuple() if published else None,
    )


@pytest.fixture(scope="module")
def working(parsed: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {oid: feed for oid, feed in parsed.items() if oid not in expected["broken"]}


@pytest.fixture(scope="module")
def expected_items(expected: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    items: dict[Key, dict[str, Any]] = {}
    for outlet_id, entries in expected["items"].items():
        for entry in entries:
            kind = "guid" if "guid" in entry else "link"
            key = (outlet_id, kind, entry[kind])
            assert key not in items, f"expected.yaml lists {key} twice"
            items[key] = entry
    return items


def _entry_key(outlet_id: str, entry: Any) -> Key:
    return (outlet_id, "guid", entry.id) if entry.get("id") else (outlet_id, "link", entry.link)


def _date(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _all_entries(working: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(oid, entry) for oid, feed in working.items() for entry in feed.entries]


# --- outlets.yaml -------------------------------------------------------------------------


def test_outlets_yaml_is_well_formed(outlets: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in outlets]
    assert len(ids) == len(set(ids)), "outlet ids must be unique"
    for outlet in outlets:
        assert OUTLET_KEYS <= set(outlet) <= OUTLET_KEYS | OPTIONAL_OUTLET_KEYS, outlet["id"]
        assert re.fullmatch(r"[a-z0-9-]+", outlet["id"])
        assert DEMO.joinpath(outlet["file"]).is_file(), outlet["file"]
        assert re.fullmatch(r"\d+[smhd]", outlet["interval"])
        assert all(re.fullmatch(r"[a-z0-9-]+", tag) for tag in outlet["tags"])
        assert all(re.fullmatch(r"[A-Z]{2}", code) for code in outlet["regions"])
        assert outlet["title"].strip()


def test_non_ascii_bodies_are_served_with_a_charset(outlets: list[dict[str, Any]]) -> None:
    for outlet in outlets:
        body = DEMO.joinpath(outlet["file"]).read_bytes()
        if not body.isascii():
            assert _charset(outlet["content_type"]), outlet["id"]


def test_every_data_file_is_an_outlet(outlets: list[dict[str, Any]]) -> None:
    listed = {o["file"] for o in outlets} | {"outlets.yaml", "expected.yaml", "README.md"}
    present = {f.name for f in DEMO.iterdir() if f.is_file()}
    assert present == listed


def test_every_feed_file_describes_itself(outlets: list[dict[str, Any]]) -> None:
    for outlet in outlets:
        text = (
            DEMO.joinpath(outlet["file"])
            .read_bytes()
            .decode(_charset(outlet["content_type"]) or "utf-8")
        )
        if outlet["file"].endswith(".json"):  # JSON has no comments: an extension key instead
            head = " ".join(json.loads(text)["_demo_fixture"].values())
        else:
            head = text[:600] if "<!--" in text[:600] else ""
        assert "Demo fixture" in head and "Expected" in head, outlet["id"]


# --- the feeds ----------------------------------------------------------------------------


def test_working_feeds_parse_cleanly(working: dict[str, Any]) -> None:
    for outlet_id, feed in working.items():
        assert not feed.bozo, f"{outlet_id}: {feed.get('bozo_exception')}"
        assert feed.entries, outlet_id


def test_at_least_six_outlets_and_eighty_items(working: dict[str, Any]) -> None:
    assert len(working) >= 6
    assert len(_all_entries(working)) >= 80


def test_feed_language_matches_outlets_yaml(
    outlets: list[dict[str, Any]], working: dict[str, Any]
) -> None:
    for outlet in outlets:
        if outlet["id"] in working:
            language = working[outlet["id"]].feed.get("language", "")
            assert language.lower() == outlet["lang"].lower(), outlet["id"]


def test_all_four_languages_and_both_chinese_scripts(
    outlets: list[dict[str, Any]], working: dict[str, Any]
) -> None:
    langs = {o["lang"] for o in outlets if o["id"] in working}
    assert {"en", "ja", "ko", "zh-CN", "zh-TW"} <= langs
    for outlet in outlets:
        if outlet["id"] not in working:
            continue
        text = "".join(e.title + e.summary for e in working[outlet["id"]].entries)
        _assert_script(outlet["lang"], text, outlet["id"])


def _assert_script(lang: str, text: str, outlet_id: str) -> None:
    chars = set(text)
    if lang == "ja":
        assert re.search("[\u3040-\u30ff]", text), f"{outlet_id}: no kana"
    elif lang == "ko":
        assert re.search("[\uac00-\ud7a3]", text), f"{outlet_id}: no Hangul"
    elif lang == "zh-CN":
        assert len(chars & SIMPLIFIED) >= 5 and not chars & TRADITIONAL, outlet_id
    elif lang == "zh-TW":
        assert len(chars & TRADITIONAL) >= 5 and not chars & SIMPLIFIED, outlet_id


def test_formats_are_mixed(working: dict[str, Any]) -> None:
    versions = {feed.version for feed in working.values()}
    assert {"rss20", "atom10", "rss10", "json1.1"} <= versions


def test_one_feed_in_a_legacy_asian_encoding(
    outlets: list[dict[str, Any]], working: dict[str, Any]
) -> None:
    legacy = [o for o in outlets if _charset(o["content_type"]).lower() not in ("", "utf-8")]
    assert [o["id"] for o in legacy] == ["toto-shimpo"]
    body = DEMO.joinpath(legacy[0]["file"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("shift_jis")
    assert text.startswith('<?xml version="1.0" encoding="Shift_JIS"?>')
    feed = working["toto-shimpo"]
    assert feed.encoding.lower() == "shift_jis"
    titles = [e.title for e in feed.entries]
    assert all(title in text for title in titles)
    assert any("尖閣" in t for t in titles) and any("北朝鮮" in t for t in titles)


def test_the_broken_feed_is_broken(
    outlets: list[dict[str, Any]], parsed: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert expected["broken"] == ["manila-courier"]
    assert [o["id"] for o in outlets if o.get("broken")] == expected["broken"]
    by_id = {o["id"]: o for o in outlets}
    for outlet_id in expected["broken"]:
        feed = parsed[outlet_id]
        assert feed.bozo and not feed.entries, outlet_id
        assert by_id[outlet_id]["content_type"].startswith("text/html")


def test_dates_fall_in_the_crisis_weeks(working: dict[str, Any]) -> None:
    for outlet_id, entry in _all_entries(working):
        date = _date(entry)
        if date is not None:
            assert WINDOW[0] <= date < WINDOW[1], f"{outlet_id}: {entry.title}"


def test_guids_are_unique_within_each_feed(working: dict[str, Any]) -> None:
    for outlet_id, feed in working.items():
        keys = [_entry_key(outlet_id, e) for e in feed.entries]
        assert len(keys) == len(set(keys)), outlet_id


# --- the messiness a real feed has ----------------------------------------------------------


def test_exactly_one_item_without_guid_and_one_without_date(working: dict[str, Any]) -> None:
    entries = [entry for _, entry in _all_entries(working)]
    assert sum(1 for e in entries if not e.get("id")) == 1
    assert sum(1 for e in entries if _date(e) is None) == 1


def test_tracking_parameters_html_and_entities(
    outlets: list[dict[str, Any]], working: dict[str, Any]
) -> None:
    entries = [entry for _, entry in _all_entries(working)]
    assert sum(1 for e in entries if "utm_source=" in e.link) >= 5
    assert sum(1 for e in entries if re.search(r"<(p|strong|em|img)\b", e.summary)) >= 5
    raw = b"".join(DEMO.joinpath(o["file"]).read_bytes() for o in outlets)
    for entity in (b"&amp;", b"&#8217;", b"&rsquo;", b"&lt;p&gt;"):
        assert entity in raw, entity


# --- expected.yaml -------------------------------------------------------------------------


def test_expected_lists_exactly_the_items_of_the_feeds(
    working: dict[str, Any], expected_items: dict[Key, dict[str, Any]]
) -> None:
    in_feeds = {_entry_key(oid, entry) for oid, entry in _all_entries(working)}
    assert sorted(in_feeds - expected_items.keys()) == [], "items missing from expected.yaml"
    assert sorted(expected_items.keys() - in_feeds) == [], "expected.yaml items not in a feed"


def test_expected_entries_are_well_formed(expected_items: dict[Key, dict[str, Any]]) -> None:
    for key, entry in expected_items.items():
        assert set(entry) <= ITEM_KEYS and ("guid" in entry) != ("link" in entry), key
        assert set(entry["topics"]) <= TOPICS, key
        assert len(entry["topics"]) == len(set(entry["topics"])), key
        assert all(re.fullmatch(r"[A-Z]{2}", code) for code in entry["regions"]), key
        assert entry["regions"] == sorted(set(entry["regions"])), key


def test_every_topic_has_items_and_there_is_noise(
    expected_items: dict[Key, dict[str, Any]],
) -> None:
    used = {topic for entry in expected_items.values() for topic in entry["topics"]}
    assert used == TOPICS
    noise = [entry for entry in expected_items.values() if not entry["topics"]]
    assert len(noise) >= 10


def test_noise_contains_the_traps(
    working: dict[str, Any], expected_items: dict[Key, dict[str, Any]]
) -> None:
    """Each trap is an item full of alert words whose expected topics are empty."""
    noise = {
        entry.title: expected_items[_entry_key(oid, entry)]
        for oid, entry in _all_entries(working)
        if not expected_items[_entry_key(oid, entry)]["topics"]
    }
    summaries = {e.title: e.summary for _, e in _all_entries(working)}
    assert any("Taiwan Strait" in summaries[t] and "film" in summaries[t] for t in noise)
    assert any("Georgia" in t and "Jordan" in t for t in noise)
    airlines = [noise[t] for t in noise if "China Airlines" in t or "中華航空" in t]
    assert len(airlines) == 2 and all("CN" not in entry["regions"] for entry in airlines)
    assert any(re.search(r"[Ww]eather|寒|첫눈", t) for t in noise)
    assert any(re.search(r"shares|台股", t) for t in noise)


def test_stories_are_told_by_several_outlets(
    working: dict[str, Any], expected_items: dict[Key, dict[str, Any]]
) -> None:
    stories: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for oid, entry in _all_entries(working):
        story = expected_items[_entry_key(oid, entry)].get("story")
        if story:
            stories[story].append((oid, entry))
    wide = [name for name, members in stories.items() if len({o for o, _ in members}) >= 3]
    assert len(wide) >= 5, wide
    for name, members in stories.items():
        _assert_one_story(name, members, expected_items)


def _assert_one_story(
    name: str, members: list[tuple[str, Any]], expected_items: dict[Key, dict[str, Any]]
) -> None:
    outlets = [oid for oid, _ in members]
    assert len(outlets) == len(set(outlets)), f"{name}: an outlet tells it twice"
    assert len({entry.link for _, entry in members}) == len(members), name
    topic_sets = [set(expected_items[_entry_key(o, e)]["topics"]) for o, e in members]
    assert set.intersection(*topic_sets), f"{name}: its items share no topic"
    dates = [d for _, e in members if (d := _date(e)) is not None]
    assert max(dates) - min(dates) <= timedelta(days=4), name

"""The starter list (monitor/data/starter.opml): real public sources for the default rules.

It cannot be fetched here, so these check what can be checked offline: the OPML is what
`feeds import` reads, every address is a well-formed https URL without credentials, the
searches are built the way Google News and GDELT expect, every rule of the default pack has
sources, the four languages are there, and import -> export keeps every feed as it was.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.ingest.feedcheck import url_key
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.opml import NAMESPACE, ImportedFeed, add_imported, export_opml, import_opml
from monitor.match.regions import load_gazetteer
from monitor.match.ruleset import load_ruleset

ROOT = Path(__file__).resolve().parents[2]
DATA = (resources.files("monitor") / "data" / "starter.opml").read_bytes()
LANGUAGES = {"en", "ja", "zh-CN", "zh-TW", "ko"}
M = "{" + NAMESPACE + "}"


@pytest.fixture(scope="module")
def outlines() -> list[dict[str, str]]:
    root = ET.fromstring(DATA)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "monitor starter sources"
    assert root.findtext("head/dateCreated") == "Wed, 02 Dec 2026 00:00:00 GMT"
    found = [dict(o.attrib) for o in root.iter("outline")]
    assert len(found) >= 80
    return found


@pytest.fixture(scope="module")
def feeds() -> list[ImportedFeed]:
    return import_opml(DATA, "starter.opml")


def test_every_outline_has_what_import_and_readers_need(outlines: list[dict[str, str]]) -> None:
    for o in outlines:
        where = o.get(f"{M}id")
        assert o["type"] == "rss" and o["text"] == o["title"] and o["title"].strip(), where
        assert o["language"] in LANGUAGES, where
        assert o["category"] and o[f"{M}enabled"] == "true", where
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", o[f"{M}id"] or "")
        assert o[f"{M}interval"] in {"15m", "30m", "1h"}, where


def test_every_url_is_a_well_formed_https_address(feeds: list[ImportedFeed]) -> None:
    for feed in feeds:
        parts = urlsplit(feed.url)
        assert parts.scheme == "https" and parts.hostname, feed.url
        assert parts.username is None and parts.password is None, feed.url
        assert parts.port is None and not parts.fragment, feed.url
        assert not re.search(r"[\s<>\"]", feed.url) and feed.url.isascii(), feed.url
    keys = Counter(url_key(feed.url) for feed in feeds)
    assert [key for key, n in keys.items() if n > 1] == []


def test_searches_are_built_as_the_services_expect(feeds: list[ImportedFeed]) -> None:
    google = [f for f in feeds if urlsplit(f.url).hostname == "news.google.com"]
    gdelt = [f for f in feeds if urlsplit(f.url).hostname == "api.gdeltproject.org"]
    assert len(google) >= 30 and len(gdelt) >= 5
    for feed in google:
        query = parse_qs(urlsplit(feed.url).query)
        assert urlsplit(feed.url).path == "/rss/search", feed.url
        assert set(query) == {"q", "hl", "gl", "ceid"}, feed.url
        assert query["q"][0].endswith(" when:1d"), feed.url  # recent items only
        assert query["ceid"][0].startswith(query["gl"][0] + ":"), feed.url
        assert {"search", "google-news"} <= set(feed.tags), feed.url
    for feed in gdelt:
        query = parse_qs(urlsplit(feed.url).query)
        assert urlsplit(feed.url).path == "/api/v2/doc/doc", feed.url
        assert (query["mode"], query["format"]) == (["artlist"], ["rss"]), feed.url
        assert query["query"][0].count("(") == query["query"][0].count(")"), feed.url
        assert feed.interval is not None and feed.interval.total_seconds() >= 3600
        assert {"search", "gdelt"} <= set(feed.tags), feed.url


def test_every_rule_of_the_default_pack_has_searches(feeds: list[ImportedFeed]) -> None:
    rule_ids = {rule.id for rule in load_ruleset(ROOT / "rules").rules}
    ids = [feed.id or "" for feed in feeds]
    missing = sorted(r for r in rule_ids if not any(i.startswith(f"gnews-{r}-") for i in ids))
    assert missing == [], "add a Google News search for these rules"


def test_the_core_topics_are_searched_in_four_languages(feeds: list[ImportedFeed]) -> None:
    core = [
        "taiwan-strait-military",
        "china-japan-row",
        "korea-missiles",
        "un-diplomacy",
        "china-europe-outreach",
        "chip-export-controls",
    ]
    ids = {feed.id for feed in feeds}
    for topic in core:
        for lang in ("en", "ja", "ko"):
            assert f"gnews-{topic}-{lang}" in ids
        assert {f"gnews-{topic}-zh-cn", f"gnews-{topic}-zh-tw"} & ids, topic


def test_outlets_in_every_language(outlines: list[dict[str, str]]) -> None:
    outlets = Counter(o["language"][:2] for o in outlines if "outlet" in o["category"])
    assert all(outlets[lang] >= 5 for lang in ("en", "ja", "zh", "ko")), outlets


def test_region_hints_are_known_codes(feeds: list[ImportedFeed]) -> None:
    codes = load_gazetteer().codes
    unknown = {code for feed in feeds for code in feed.regions if code not in codes}
    assert unknown == set()
    assert sum(1 for feed in feeds if feed.regions) >= 60


def test_import_then_export_keeps_the_list(tmp_path: Path, feeds: list[ImportedFeed]) -> None:
    edit = FeedsFile.load(tmp_path / "feeds.yaml")
    assert add_imported(edit, feeds, "starter.opml") == (len(feeds), 0)
    edit.save()
    exported = export_opml(load_feeds(tmp_path / "feeds.yaml").feeds, title="t")
    back = import_opml(exported.encode("utf-8"), "export.opml")
    strip = [(f.url, f.title, f.tags, f.id, f.interval, f.enabled, f.regions) for f in feeds]
    assert [(f.url, f.title, f.tags, f.id, f.interval, f.enabled, f.regions) for f in back] == strip


def test_the_readme_counts_what_the_list_holds(feeds: list[ImportedFeed]) -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    google = sum(1 for f in feeds if "google-news" in f.tags)
    gdelt = sum(1 for f in feeds if "gdelt" in f.tags)
    outlets = sum(1 for f in feeds if "outlet" in f.tags)
    assert outlets + google + gdelt == len(feeds)
    assert "was compiled on 2026-12-02" in readme
    assert f"holds {len(feeds)} sources" in readme
    assert f"- {outlets} outlets' own feeds" in readme
    assert f"- {google} Google News RSS searches" in readme
    assert f"- {gdelt} GDELT DOC API searches" in readme

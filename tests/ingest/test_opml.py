"""OPML import (folders and categories become tags, hostile XML refused) and export."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.opml import ImportedFeed, export_opml, import_opml
from monitor.models import Feed

READER_EXPORT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Fixture: what a feed reader exports: nested folders, a category attribute, the same
     feed in two folders, a lower-case xmlurl, a folder without feeds, and a title only in
     `text`. Expect: 4 feeds in document order, folder and category names as tags, the
     duplicate merged. -->
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Asia">
      <outline text="Japan Desk">
        <outline type="rss" text="NHK World" title="NHK World" xmlUrl="https://nhk.example.org/rss.xml"
                 category="/Wire/Breaking,tv"/>
      </outline>
      <outline type="rss" text="Taipei Times" xmlurl="https://taipei.example.org/feed"/>
    </outline>
    <outline text="Diplomacy">
      <outline type="rss" text="NHK World" xmlUrl="https://nhk.example.org/rss.xml"/>
      <outline type="rss" title="UN News" text="ignored" xmlUrl="http://un.example.org/atom"/>
    </outline>
    <outline text="Empty folder"/>
    <outline type="rss" text="Loose &amp; unfiled" xmlUrl="https://loose.example.org/?a=1&amp;b=2"/>
  </body>
</opml>
"""


def test_import_reads_feeds_folders_and_categories() -> None:
    feeds = import_opml(READER_EXPORT, "subs.opml")
    assert [(f.url, f.title, f.tags) for f in feeds] == [
        ("https://nhk.example.org/rss.xml", "NHK World",
         ("asia", "japan-desk", "wire", "breaking", "tv", "diplomacy")),
        ("https://taipei.example.org/feed", "Taipei Times", ("asia",)),
        ("http://un.example.org/atom", "UN News", ("diplomacy",)),
        ("https://loose.example.org/?a=1&b=2", "Loose & unfiled", ()),
    ]  # fmt: skip
    assert feeds[0].line == 11  # where the first outline of that feed starts


def test_export_is_opml_2_with_tags_as_category() -> None:
    feeds = [Feed(id="a", url="https://a.org/rss", title="A", tags=("asia", "wire")),
             Feed(id="b", url="https://b.org/rss")]  # fmt: skip
    root = ET.fromstring(export_opml(feeds, title="monitor feeds"))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "monitor feeds"
    outlines = [o.attrib for o in root.iter("outline")]
    assert outlines == [
        {"type": "rss", "text": "A", "title": "A", "xmlUrl": "https://a.org/rss",
         "category": "asia,wire"},
        {"type": "rss", "text": "https://b.org/rss", "xmlUrl": "https://b.org/rss"},
    ]  # fmt: skip


def test_export_then_import_round_trips() -> None:
    feeds = [
        Feed(id="x", url="https://x.example.org/rss?a=1&b=<2>", title='Quotes " & <tags>',
             tags=("asia", "台湾", "wire")),
        Feed(id="y", url="https://y.example.org/feed", title="朝鲜半岛", tags=("korea",),
             interval=timedelta(hours=1), enabled=False),
        Feed(id="z", url="https://z.example.org/atom"),  # untitled: comes back untitled
    ]  # fmt: skip
    back = import_opml(export_opml(feeds, title="t & t").encode("utf-8"), "export.opml")
    assert [(f.url, f.title, f.tags) for f in back] == [(f.url, f.title, f.tags) for f in feeds]


def test_imported_feeds_are_valid_in_feeds_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    edit = FeedsFile.load(path)
    for entry in import_opml(READER_EXPORT, "subs.opml"):
        edit.add(entry.url, title=entry.title, tags=entry.tags)
    edit.save()
    feeds = load_feeds(path).feeds
    assert [f.tags for f in feeds][1:3] == [("asia",), ("diplomacy",)]
    assert feeds[3].title == "Loose & unfiled"


BROKEN = {
    "not-xml": (b"<!-- Fixture: truncated. -->\n<opml><body>\n<outline", "3:1",
                "not a valid OPML file"),
    "empty": (b"", "1:1", "not a valid OPML file: no element found"),
    "not-opml": (b'<?xml version="1.0"?>\n<!-- Fixture: an RSS feed. -->\n<rss version="2.0"/>\n',
                 "3", "not an OPML file: the root element is <rss>"),
    "no-body": (b"<!-- Fixture: head only. -->\n<opml version='2.0'><head/></opml>\n", "2",
                "no <body> element"),
    "bad-xmlurl": (b"<!-- Fixture: a relative URL. -->\n<opml><body>\n"
                   b"<outline text='x' xmlUrl='/rss.xml'/>\n</body></opml>", "3",
                   "xmlUrl is not an absolute http(s) URL: '/rss.xml'"),
    "bad-port": (b"<!-- Fixture: a port out of range. -->\n<opml><body>\n"
                 b"<outline text='x' xmlUrl='http://a.org:99999/'/>\n</body></opml>", "3",
                 "xmlUrl is not an absolute http(s) URL"),
    "billion-laughs": (
        b'<?xml version="1.0"?>\n<!-- Fixture: entity expansion bomb. Expect: refused. -->\n'
        b'<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">\n'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n'
        b"<opml><body><outline text='&c;' xmlUrl='https://a.org/'/></body></opml>\n",
        "3", "DOCTYPE declarations are not allowed"),
    "external-entity": (
        b'<!-- Fixture: XXE. Expect: refused. -->\n'
        b'<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        b"<opml><body><outline text='&x;' xmlUrl='https://a.org/'/></body></opml>\n",
        "2", "DOCTYPE declarations are not allowed"),
}  # fmt: skip


@pytest.mark.parametrize(("data", "where", "words"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_opml_names_the_file(data: bytes, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        import_opml(data, "subs.opml")
    assert str(caught.value).startswith(f"subs.opml:{where}: "), str(caught.value)
    assert words in caught.value.message


def test_imported_feed_is_a_plain_value() -> None:
    feed = ImportedFeed(url="https://a.org/", tags=("x",))
    assert (feed.title, feed.line) == (None, None)
    with pytest.raises(AttributeError):
        feed.url = "https://b.org/"  # type: ignore[misc]


def test_deeply_nested_folders_neither_crash_nor_explode() -> None:
    # Fixture (built here): 5,000 nested folders around one feed. Expect: the feed, 16 tags.
    depth = 5000
    nested = b"".join(b"<outline text='f%d'>" % n for n in range(depth))
    data = (b"<opml><body>" + nested + b"<outline xmlUrl='https://a.org/'/>"
            + b"</outline>" * depth + b"</body></opml>")  # fmt: skip
    (feed,) = import_opml(data, "deep.opml")
    assert feed.tags == tuple(f"f{n}" for n in range(16))

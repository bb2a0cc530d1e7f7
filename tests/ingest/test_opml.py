"""OPML import (folders and categories become tags, hostile XML refused) and export."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.opml import NAMESPACE, ImportedFeed, add_imported, export_opml, import_opml
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
         ("Asia", "Japan-Desk", "Wire", "Breaking", "tv", "Diplomacy")),
        ("https://taipei.example.org/feed", "Taipei Times", ("Asia",)),
        ("http://un.example.org/atom", "UN News", ("Diplomacy",)),
        ("https://loose.example.org/?a=1&b=2", "Loose & unfiled", ()),
    ]  # fmt: skip
    assert feeds[0].line == 11  # where the first outline of that feed starts
    # Nothing in monitor's namespace: id derived and interval default later, enabled.
    assert {(f.id, f.interval, f.enabled, f.regions) for f in feeds} == {(None, None, True, ())}


FOLDER_NAMES = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Fixture: folder and category names a reader may use. Expect: valid tags kept as written
     (case, script, full width), invalid characters replaced by '-', one spelling per tag. -->
<opml version="2.0"><body>
  <outline text="World News"><outline text="台湾"><outline text="ＡＳＩＡ">
    <outline text="a" xmlUrl="https://a.example.org/rss"
             category="Asia,asia,NHK: Japan,(Breaking),'quoted',C++,#x"/>
  </outline></outline></outline>
</body></opml>
"""


def test_folder_names_keep_their_text_as_tags() -> None:
    (feed,) = import_opml(FOLDER_NAMES.encode(), "names.opml")
    assert feed.tags == (
        "World-News", "台湾", "ＡＳＩＡ", "Asia", "NHK-Japan", "Breaking", "quoted", "C++", "#x",
    )  # fmt: skip


def test_export_is_opml_2_with_tags_as_category() -> None:
    feeds = [Feed(id="a", url="https://a.org/rss", title="A", tags=("asia", "wire")),
             Feed(id="b", url="https://b.org/rss")]  # fmt: skip
    root = ET.fromstring(export_opml(feeds, title="monitor feeds"))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "monitor feeds"
    outlines = [o.attrib for o in root.iter("outline")]
    ns = "{" + NAMESPACE + "}"
    assert outlines == [
        {"type": "rss", "text": "A", "title": "A", "xmlUrl": "https://a.org/rss",
         "category": "asia,wire", f"{ns}id": "a", f"{ns}interval": "15m",
         f"{ns}enabled": "true"},
        {"type": "rss", "text": "https://b.org/rss", "xmlUrl": "https://b.org/rss",
         f"{ns}id": "b", f"{ns}interval": "15m", f"{ns}enabled": "true"},
    ]  # fmt: skip


def test_export_writes_monitor_attributes_with_a_readable_prefix() -> None:
    feeds = [Feed(id="tw-desk", url="https://a.org/rss", regions=("TW", "JP"),
                  interval=timedelta(hours=1), enabled=False)]  # fmt: skip
    text = export_opml(feeds, title="t")
    assert f'xmlns:monitor="{NAMESPACE}"' in text
    assert 'monitor:id="tw-desk" monitor:interval="1h" monitor:enabled="false"' in text
    assert 'monitor:regions="TW,JP"' in text


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
    assert [(f.id, f.interval, f.enabled, f.regions) for f in back] == [
        (f.id, f.interval, f.enabled, f.regions) for f in feeds
    ]


ROUND_TRIP_YAML = """\
feeds:
  - url: https://x.example.org/rss
    id: x-desk
    title: X desk
    tags: [Asia, 台湾]
    regions: [TW, JP]
    interval: 1h
  - url: https://y.example.org/feed
    id: y
    enabled: false
    interval: 90s
  - url: https://z.example.org/atom
    username_env: Z_USER
    password_env: Z_PASSWORD
"""


def test_feeds_yaml_export_import_is_lossless(tmp_path: Path) -> None:
    # Fixture: feeds.yaml with every key OPML has no attribute for. Expect: the same feeds,
    # field for field, after export -> import into an empty file.
    source = tmp_path / "a" / "feeds.yaml"
    source.parent.mkdir()
    source.write_text(ROUND_TRIP_YAML, encoding="utf-8")
    original = load_feeds(source).feeds
    opml = export_opml(original, title="t").encode("utf-8")
    target = FeedsFile.load(tmp_path / "feeds.yaml")
    assert add_imported(target, import_opml(opml, "x.opml"), "x.opml") == (3, 0)
    target.save()
    assert load_feeds(tmp_path / "feeds.yaml").feeds == original


def test_an_id_taken_by_another_feed_names_the_outline(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example.org/rss\n    id: desk\n", "utf-8")
    opml = export_opml([Feed(id="desk", url="https://b.example.org/rss")], "t").encode()
    line = 1 + opml[: opml.index(b'monitor:id="desk"')].count(b"\n")
    with pytest.raises(ConfigError) as caught:
        add_imported(FeedsFile.load(path), import_opml(opml, "in.opml"), "in.opml")
    assert str(caught.value).startswith(f"in.opml:{line}: monitor:id 'desk' is already taken")
    assert "https://a.example.org/rss" in str(caught.value)


def test_imported_feeds_are_valid_in_feeds_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    edit = FeedsFile.load(path)
    assert add_imported(edit, import_opml(READER_EXPORT, "subs.opml"), "subs.opml") == (4, 0)
    edit.save()
    feeds = load_feeds(path).feeds
    assert [f.tags for f in feeds][1:3] == [("Asia",), ("Diplomacy",)]
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
    "credentials": (b"<!-- Fixture: a password in the URL. -->\n<opml><body>\n"
                    b"<outline text='x' xmlUrl='https://me:s3cret@a.org/rss'/>\n</body></opml>",
                    "3", "xmlUrl carries credentials"),
    "unbound-prefix": (b"<!-- Fixture: monitor: without xmlns. -->\n<opml><body>\n"
                       b"<outline xmlUrl='https://a.org/' monitor:id='a'/>\n</body></opml>",
                       "3:1", "unbound prefix"),
    "bad-interval": (b'<!-- Fixture: a bad interval. -->\n<opml xmlns:monitor="urn:x-monitor:opml">'
                     b"<body>\n<outline xmlUrl='https://a.org/' monitor:interval='10'/>\n"
                     b"</body></opml>", "3", "interval"),
    "bad-enabled": (b'<!-- Fixture: enabled=yes. -->\n<opml xmlns:monitor="urn:x-monitor:opml">'
                    b"<body>\n<outline xmlUrl='https://a.org/' monitor:enabled='yes'/>\n"
                    b"</body></opml>", "3", "monitor:enabled must be true or false"),
    "half-a-login": (b'<!-- Fixture: a user without a password. -->\n'
                     b'<opml xmlns:monitor="urn:x-monitor:opml"><body>\n'
                     b"<outline xmlUrl='https://a.org/' monitor:username_env='A_USER'/>\n"
                     b"</body></opml>", "3", "a login needs both"),
    "bad-login-name": (b'<!-- Fixture: a secret where a name goes. -->\n'
                       b'<opml xmlns:monitor="urn:x-monitor:opml"><body>\n'
                       b"<outline xmlUrl='https://a.org/' monitor:username_env='me'\n"
                       b"         monitor:password_env='hunter2!'/>\n</body></opml>", "3",
                       "must name an environment variable"),
    "bad-region": (b'<!-- Fixture: a region with a space. -->\n'
                   b'<opml xmlns:monitor="urn:x-monitor:opml"><body>\n'
                   b"<outline xmlUrl='https://a.org/' monitor:regions='TW, J P'/>\n"
                   b"</body></opml>", "3", "bad entry 'J P'"),
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

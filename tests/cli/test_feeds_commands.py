"""`monitor feeds add` (finding the feed a page names), `feeds check` (a look that stores
nothing) and `feeds import --starter`, run in-process on a real rules folder, feed server and
database path."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.ingest import feeds as feeds_module
from monitor.ingest.feeds import load_feeds
from monitor.store import Store
from tests.ingest.test_discover import FEED
from tests.support.feedserver import FeedServer, serve, status

HTML = "text/html; charset=utf-8"
HEAD = "# My sources: this comment stays.\nfeeds:\n"


def page(*links: tuple[str, str, str]) -> bytes:
    """An HTML page naming feeds: (type, href, title)."""
    tags = "".join(
        f'<link rel="alternate" type="{kind}" href="{href}" title="{title}">'
        for kind, href, title in links
    )
    return f"<!DOCTYPE html><html><head><title>Site</title>{tags}</head><body/></html>".encode()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules, db = tmp_path / "rules", tmp_path / "state" / "monitor.db"
    rules.mkdir()
    (rules / "feeds.yaml").write_text(HEAD, encoding="utf-8")
    with FeedServer() as server:
        yield server, rules, db


def run(rules: Path, db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), *args])


# --- feeds add ---------------------------------------------------------------------------


def test_add_a_page_adds_the_feed_it_names_with_the_feeds_title(
    env: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = env
    feed = server.add("/blog/feed.xml", serve(FEED))
    site = server.add("/blog/", serve(page(("application/rss+xml", "feed.xml", "Blog")), HTML))
    result = run(rules, db, "feeds", "add", site, "--tag", "asia")
    assert result.exit_code == 0, result.output
    assert f"{site} names the RSS 2.0 feed {feed}" in result.output
    [added] = load_feeds(rules / "feeds.yaml").feeds
    assert (added.url, added.title, added.tags) == (feed, "Test", ("asia",))
    assert (rules / "feeds.yaml").read_text(encoding="utf-8").startswith(HEAD)


def test_add_a_feed_takes_its_title_unless_one_is_given(
    env: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = env
    first, second = server.add("/a.xml", serve(FEED)), server.add("/b.xml", serve(FEED))
    assert run(rules, db, "feeds", "add", first).exit_code == 0
    assert run(rules, db, "feeds", "add", second, "--title", "Mine").exit_code == 0
    titles = [f.title for f in load_feeds(rules / "feeds.yaml").feeds]
    assert titles == ["Test", "Mine"]


def test_add_a_page_with_several_feeds_asks_to_choose(
    env: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = env
    links = [
        ("application/rss+xml", "/feed/", "Site » Feed"),
        ("application/atom+xml", "/comments/feed/", "Site » Comments Feed"),
    ]
    site = server.add("/", serve(page(*links), HTML))
    result = run(rules, db, "feeds", "add", site, "--interval", "1h")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"monitor: {site} names 2 feeds; add the one you want with its command:"
    commands = [line.split("  # ") for line in lines[1:]]
    assert [(command.strip(), about) for command, about in commands] == [
        (f"monitor feeds add {server.url('/feed/')} --interval 1h", "RSS: Site » Feed"),
        (f"monitor feeds add {server.url('/comments/feed/')} --interval 1h",
         "Atom: Site » Comments Feed"),
    ]  # fmt: skip
    assert (rules / "feeds.yaml").read_text(encoding="utf-8") == HEAD  # nothing added


def test_add_a_page_without_feeds_is_one_clear_error(env: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = env
    site = server.add("/", serve(page(), HTML))
    result = run(rules, db, "feeds", "add", site)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"monitor: {site} is an HTML page that names no feed")
    assert (rules / "feeds.yaml").read_text(encoding="utf-8") == HEAD


def test_add_refuses_a_missing_page_but_keeps_an_unreachable_one(
    env: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = env
    missing = server.add("/missing.xml", status(404))
    refused = run(rules, db, "feeds", "add", missing)
    assert refused.exit_code == 1 and "HTTP 404" in refused.output
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}/feed.xml"  # nobody listens yet
        kept = run(rules, db, "feeds", "add", down)
    assert kept.exit_code == 0, kept.output
    assert "monitor: warning: could not check" in kept.stderr
    assert "monitor feeds check 127-0-0-1-feed" in kept.stderr
    assert [f.url for f in load_feeds(rules / "feeds.yaml").feeds] == [down]


# --- feeds check -------------------------------------------------------------------------


CHECKED = """\
feeds:
  - {{url: "{good}", id: good}}
  - {{url: "{html}", id: html-page}}
  - {{url: "{broken}", id: broken}}
  - {{url: "{good}?off", id: off, enabled: false}}
"""


@pytest.fixture
def checked(env: tuple[FeedServer, Path, Path]) -> tuple[FeedServer, Path, Path]:
    server, rules, db = env
    good = server.add("/good.xml", serve(FEED))
    html = server.add("/page", serve(page(("application/rss+xml", "/good.xml", "x")), HTML))
    broken = server.add("/broken.xml", status(500))
    text = CHECKED.format(good=good, html=html, broken=broken)
    (rules / "feeds.yaml").write_text(text, encoding="utf-8")
    return server, rules, db


def test_check_shows_each_enabled_feed_and_stores_nothing(
    checked: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = checked
    before = (rules / "feeds.yaml").read_bytes()
    result = run(rules, db, "feeds", "check")
    assert result.exit_code == 1  # two of the three do not work
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "FORMAT", "ITEMS", "NEWEST", "(UTC)", "PROBLEM"]
    assert lines[1].split() == ["good", "ok", "RSS", "2.0", "3", "2025-12-02", "08:00"]
    assert lines[2].startswith("html-page") and "the URL returned an HTML page" in lines[2]
    assert f"put {server.url('/good.xml')} in rules/feeds.yaml" in lines[2]  # not clipped
    assert lines[3].split()[:2] == ["broken", "error"] and "HTTP 500" in lines[3]
    assert lines[4] == "3 feeds checked: 1 working, 2 not; nothing stored"
    assert not server.requests_to("/good.xml")[0].headers.get("if-none-match")
    assert not db.exists() and not db.parent.exists()  # not even an empty database
    assert (rules / "feeds.yaml").read_bytes() == before


def test_check_json_and_named_feeds_leave_an_existing_database_alone(
    checked: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = checked
    assert run(rules, db, "poll", "--feed", "good").exit_code == 0
    fingerprint = hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns
    result = run(rules, db, "feeds", "check", "off", "good", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["id"] for row in rows] == ["good", "off"]  # file order; disabled if named
    assert rows[1] == {
        "id": "off",
        "url": server.url("/good.xml?off"),
        "status": "ok",
        "http_status": 200,
        "format": "RSS 2.0",
        "title": "Test",
        "items": 3,
        "newest": "2025-12-02T08:00:00+00:00",
        "problem": None,
    }
    assert (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns) == fingerprint
    with Store(db) as store:
        assert store.get_state("off") is None


def test_check_an_unknown_id_is_a_usage_error(checked: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = checked
    result = run(rules, db, "feeds", "check", "nope")
    assert result.exit_code == 2 and "no feed with id nope" in result.output


# --- feeds import --starter ----------------------------------------------------------------


def test_import_starter_adds_the_bundled_list(env: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = env
    result = run(rules, db, "feeds", "import", "--starter")
    assert result.exit_code == 0, result.output
    starter = (resources.files("monitor") / "data" / "starter.opml").read_text(encoding="utf-8")
    count = starter.count("xmlUrl=")
    assert f"imported {count} feeds from the starter list (compiled 2026-12-02)" in result.output
    assert len(load_feeds(rules / "feeds.yaml").feeds) == count
    again = run(rules, db, "feeds", "import", "--starter")
    assert "imported 0 feeds" in again.output and f"({count} already present)" in again.output


def test_import_wants_a_file_or_the_starter(
    env: tuple[FeedServer, Path, Path], tmp_path: Path
) -> None:
    _server, rules, db = env
    opml = tmp_path / "x.opml"
    opml.write_text("<opml/>", encoding="utf-8")
    for args in ((), (str(opml), "--starter")):
        result = run(rules, db, "feeds", "import", *args)
        assert result.exit_code == 2 and "give an OPML file or --starter" in result.output


def test_add_parses_feeds_yaml_once_to_edit_and_once_to_check(
    env: tuple[FeedServer, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsing a file of 10,000 feeds takes seconds: the trial of what can be refused before
    # any request is made on the same parse as the edit itself.
    server, rules, db = env
    feed = server.add("/feed.xml", serve(FEED))
    parsed: list[Path] = []
    parse = feeds_module.parse_yaml

    def counted(text: str, path: Path) -> object:
        parsed.append(path)
        return parse(text, path)

    monkeypatch.setattr(feeds_module, "parse_yaml", counted)
    result = run(rules, db, "feeds", "add", feed)
    assert result.exit_code == 0, result.output
    assert parsed == [rules / "feeds.yaml"] * 2  # the edit, then the check of its result
    assert [f.url for f in load_feeds(rules / "feeds.yaml").feeds] == [feed]

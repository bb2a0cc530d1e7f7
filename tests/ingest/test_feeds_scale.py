"""Edits of feeds.yaml cost time in proportion to the number of feeds, never its square.

Counted, not timed: the Python function calls an edit makes (sys.setprofile) for N feeds and
for 2N. Linear work doubles; a scan of every feed for every feed added quadruples. Each edit
must still keep the file's comments and give the result `load_feeds` reads back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from monitor.errors import ConfigError
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.ingest.opml import add_imported, import_opml

HEAD = "# Our sources: this comment must survive.\nfeeds:\n  - url: https://first.example.org/\n"
SMALL = 200
LINEAR = 2.3  # a doubled input may cost this much more; quadratic work costs ~3-4x here


def opml(count: int) -> bytes:
    outlines = "".join(
        f"<outline text='Feed {i}' xmlUrl='https://news{i % 7}.example.com/{i}/rss.xml'/>"
        for i in range(count)
    )
    body = f"<body><outline text='Desk'>{outlines}</outline></body>"
    return f"<opml version='2.0'>{body}</opml>".encode()


def calls(work: Callable[[], Any]) -> int:
    """The Python function calls (and generator resumptions) made by `work()`."""
    count = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


def import_into(path: Path, count: int) -> int:
    """Calls to import `count` feeds into a one-feed file, checked."""
    path.write_text(HEAD, encoding="utf-8")
    data = opml(count)

    def work() -> None:
        edit = FeedsFile.load(path)
        add_imported(edit, import_opml(data, "big.opml"), "big.opml")
        edit.save()

    made = calls(work)
    assert len(load_feeds(path).feeds) == count + 1
    assert path.read_text(encoding="utf-8").startswith(HEAD)  # comment and first entry kept
    return made


def test_importing_twice_the_feeds_costs_twice_not_four_times(tmp_path: Path) -> None:
    small = import_into(tmp_path / "feeds.yaml", SMALL)
    large = import_into(tmp_path / "feeds.yaml", 2 * SMALL)
    assert large / small < LINEAR, (small, large)


def test_adding_and_removing_one_feed_cost_in_proportion_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"

    def one_edit(count: int) -> int:
        entries = "".join(f"  - url: https://news.example.com/{i}/rss.xml\n" for i in range(count))
        path.write_text(HEAD + entries, encoding="utf-8")

        def work() -> None:
            edit = FeedsFile.load(path)
            edit.add("https://late.example.net/feed.xml", id="late")
            edit.save()
            edit = FeedsFile.load(path)
            edit.remove("news-example-com-1-rss")
            edit.save()

        made = calls(work)
        ids = [feed.id for feed in load_feeds(path).feeds]
        assert ids[-1] == "late" and "news-example-com-1-rss" not in ids
        assert path.read_text(encoding="utf-8").startswith(HEAD)
        return made

    small, large = one_edit(SMALL), one_edit(2 * SMALL)
    assert large / small < LINEAR, (small, large)


def test_a_duplicate_names_the_first_feed_that_has_it(tmp_path: Path) -> None:
    # Found by dict lookups now, not a scan: the error must still name the feed that comes
    # first in the file when the new one clashes with one by url and another by id.
    path = tmp_path / "feeds.yaml"
    path.write_text(
        HEAD + "  - url: https://second.example.org/\n    id: taken\n", encoding="utf-8"
    )
    edit = FeedsFile.load(path)
    with pytest.raises(ConfigError, match=r"url https://first.example.org/ .*'first-example-org'"):
        edit.add("https://first.example.org/", id="taken")

"""Edits of feeds.yaml made at the same time: each takes the file's lock, reads the file again
under it and makes its edit on what is there, so no edit is lost and none is reported done
without being in the file. Plus the files that must not be read at all (a FIFO) or deeply."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.ingest.feeds import FeedsFile, load_feeds
from monitor.yamlfile.check import MAX_DEPTH
from monitor.yamlfile.edit import atomic_write, file_lock, lock_path
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve

START = (
    "# Our sources: this comment stays.\nfeeds:\n  - url: https://a.example.org/rss\n    id: a\n"
)


def write(tmp_path: Path, text: str = START) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_edit_made_meanwhile_is_kept_and_ours_is_made_on_top(tmp_path: Path) -> None:
    path = write(tmp_path)
    mine, theirs = FeedsFile.load(path), FeedsFile.load(path)
    mine.add("https://b.example.org/rss", id="b")
    theirs.add("https://c.example.org/rss", id="c")
    theirs.remove("a")
    theirs.save()
    mine.save()  # read again under the lock: c added and a removed stay
    assert [f.id for f in load_feeds(path).feeds] == ["c", "b"]
    assert path.read_text(encoding="utf-8").startswith("# Our sources: this comment stays.\n")


@pytest.mark.parametrize(
    ("ours", "words"),
    [
        (lambda edit: edit.add("https://c.example.org/rss", id="x"), "url https://c.example"),
        (lambda edit: edit.add("https://x.example.org/rss", id="c"), "a feed with id 'c'"),
        (lambda edit: edit.remove("a"), "no feed with id 'a'"),
    ],
)
def test_an_edit_that_no_longer_fits_is_refused_not_reported_done(
    tmp_path: Path, ours: object, words: str
) -> None:
    path = write(tmp_path)
    mine, theirs = FeedsFile.load(path), FeedsFile.load(path)
    assert callable(ours)
    ours(mine)
    theirs.add("https://c.example.org/rss", id="c")
    theirs.remove("a")
    theirs.save()
    written = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=words):
        mine.save()
    assert path.read_text(encoding="utf-8") == written


def test_save_waits_for_the_lock_and_builds_on_what_was_written_under_it(tmp_path: Path) -> None:
    path = write(tmp_path)
    edit = FeedsFile.load(path)
    edit.add("https://b.example.org/rss", id="b")
    saver = threading.Thread(target=edit.save)
    with file_lock(path):  # another editor holds the file...
        saver.start()
        # ...and writes its version while our save waits; a save that did not wait would
        # have written first, and this write would have replaced its feed.
        atomic_write(path, START + "  - url: https://c.example.org/rss\n    id: c\n")
    saver.join(timeout=30)
    assert [f.id for f in load_feeds(path).feeds] == ["a", "c", "b"]
    assert lock_path(path) == tmp_path / ".feeds.yaml.lock"


def add_loop(rules: Path, urls: list[str], outcomes: list[tuple[str, int, str]]) -> None:
    """One shell loop of `monitor feeds add`, each a real process."""
    for url in urls:
        argv = [sys.executable, "-m", "monitor", "--rules", str(rules), "feeds", "add", url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        outcomes.append((url, done.returncode, done.stdout + done.stderr))


def test_parallel_feeds_add_processes_lose_nothing(tmp_path: Path) -> None:
    """The issue: three loops of `monitor feeds add` at once; 82 reported "added", 77 were in
    the file. Now every loop's every addition is reported and is in the file."""
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules)
    loops, per_loop = 4, 6
    outcomes: list[tuple[str, int, str]] = []
    with FeedServer() as server:
        urls = [
            [server.add(f"/loop{i}/feed{j}.xml", serve(TWO)) for j in range(per_loop)]
            for i in range(loops)
        ]
        threads = [threading.Thread(target=add_loop, args=(rules, u, outcomes)) for u in urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert len(outcomes) == loops * per_loop
    failed = [(url, output) for url, code, output in outcomes if code != 0]
    assert failed == []
    assert all("added " in output for _, _, output in outcomes)
    in_file = {feed.url for feed in load_feeds(rules / "feeds.yaml").feeds}
    assert in_file == {url for url, _, _ in outcomes} | {"https://a.example.org/rss"}


def test_a_fifo_named_feeds_yaml_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    os.mkfifo(path)  # no writer: an ordinary open() would block for ever
    with pytest.raises(ConfigError) as raised:
        load_feeds(path)
    assert str(raised.value) == (f"{path}: not a regular file (replace it with a plain YAML file)")
    with pytest.raises(ConfigError, match="not a regular file"):
        FeedsFile.load(path)


@pytest.mark.parametrize(
    "text",
    [
        "feeds:\n  - url: https://a.org/rss\n    tags: " + "[" * 300 + "]" * 300 + "\n",
        "settings:" + "".join(f"\n{'  ' * (i + 1)}k{i}:" for i in range(300)) + " 1\n",
        "feeds: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
    ],
)
def test_yaml_nested_too_deep_is_an_error_with_file_and_line(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_feeds(path)
    error = raised.value
    assert error.message == f"the YAML is nested deeper than {MAX_DEPTH} levels here"
    assert error.line is not None and str(error).startswith(f"{path}:{error.line}:")

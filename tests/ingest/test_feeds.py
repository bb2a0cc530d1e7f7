"""rules/feeds.yaml: validation with file:line:column errors, and in-place edits."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.ingest.feedcheck import derive_feed_id
from monitor.ingest.feeds import (
    FeedsFile,
    format_duration,
    load_feeds,
    parse_duration,
)
from monitor.models import Feed, Settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- loading ---------------------------------------------------------------------------------

FULL = """\
# Fixture: every key of the format, with non-default values. Expect: all of them loaded.
settings:
  concurrency: 8
  per_host: 2
  timeout: {connect: 2s, read: 1m, total: 1.5m}
  max_body: 512KiB
  max_redirects: 0
  retention: 2w
  user_agent: "test agent"
feeds:
  - url: https://example.org/rss.xml
    id: example-rss
    title: Example
    tags: [asia, wire]
    regions: [TW, JP]
    interval: 10m
    enabled: false
  - url: https://www.example.com/news/feed.atom?lang=ja
"""


def test_full_file_loads_every_key(tmp_path: Path) -> None:
    config = load_feeds(write(tmp_path, FULL))
    assert config.settings == Settings(
        concurrency=8,
        per_host=2,
        connect_timeout=2.0,
        read_timeout=60.0,
        total_timeout=90.0,
        max_body_bytes=512 * 1024,
        max_redirects=0,
        retention=timedelta(weeks=2),
        user_agent="test agent",
    )
    assert config.feeds == (
        Feed(
            id="example-rss",
            url="https://example.org/rss.xml",
            title="Example",
            tags=("asia", "wire"),
            regions=("TW", "JP"),
            interval=timedelta(minutes=10),
            enabled=False,
        ),
        Feed(
            id="example-com-news-feed-lang-ja", url="https://www.example.com/news/feed.atom?lang=ja"
        ),
    )


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "settings:\nfeeds:\n", "feeds: []\n"],
    ids=["empty", "comment", "null-sections", "empty-list"],
)
def test_files_without_feeds_give_defaults(tmp_path: Path, text: str) -> None:
    config = load_feeds(write(tmp_path, text))
    assert config.feeds == ()
    assert config.settings == Settings()


def test_missing_file_means_no_feeds(tmp_path: Path) -> None:
    config = load_feeds(tmp_path / "absent.yaml")
    assert (config.feeds, config.settings) == ((), Settings())


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    assert load_feeds(path) is load_feeds(path)  # the same validated config, not a new one


def test_every_edit_is_seen_even_one_that_keeps_the_size_and_time(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    first = load_feeds(path)
    stat = path.stat()
    path.write_text(FULL.replace("concurrency: 8", "concurrency: 9"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a coarse clock would leave it
    assert path.stat().st_size == stat.st_size
    assert (first.settings.concurrency, load_feeds(path).settings.concurrency) == (8, 9)
    path.write_text(FULL.replace("concurrency: 8", "concurrency: 0"), encoding="utf-8")
    with pytest.raises(ConfigError, match="concurrency"):  # never the last good one instead
        load_feeds(path)


def test_shipped_example_is_valid() -> None:
    config = load_feeds(REPO / "rules" / "feeds.yaml")
    assert config.feeds, "the example should show at least one feed"
    assert config.settings == Settings()  # it documents the defaults, so it must equal them


# Each case: a fixture whose first line says what is wrong, the exact line:column expected,
# and words the message must contain.
ERRORS = {
    "yaml-syntax": ("# Fixture: unclosed flow list.\nfeeds:\n  - url: [https://a.org\n", "4:1",
                    "invalid YAML"),
    "top-not-mapping": ("# Fixture: a bare list at the top.\n- url: https://a.org/rss\n", "1:1",
                        "the top level must be a mapping"),
    "unknown-top-key": ("# Fixture: 'feed' for 'feeds'.\nfeed:\n  - url: https://a.org/rss\n",
                        "2:1", "unknown key 'feed' in the top level; did you mean 'feeds'?"),
    "unknown-feed-key": ("# Fixture: a typo.\nfeeds:\n  - url: https://a.org/rss\n"
                         "    intervall: 10m\n", "4:5",
                         "unknown key 'intervall' in a feed; did you mean 'interval'?"),
    "unknown-settings-key": ("# Fixture: a typo.\nsettings:\n  concurency: 4\n", "3:3",
                             "did you mean 'concurrency'?"),
    "unknown-timeout-key": ("# Fixture: a typo.\nsettings:\n  timeout: {conect: 1s}\n", "3:13",
                            "did you mean 'connect'?"),
    "duplicate-key": ("# Fixture: url twice.\nfeeds:\n  - url: https://a.org/1\n"
                      "    url: https://a.org/2\n", "4:5", 'duplicate key "url"'),
    "feeds-not-list": ("# Fixture: a mapping.\nfeeds: {url: https://a.org/rss}\n", "2:8",
                       "'feeds' must be a list"),
    "feed-not-mapping": ("# Fixture: a bare URL.\nfeeds:\n  - https://a.org/rss\n", "3:5",
                         "each feed must be a mapping"),
    "missing-url": ("# Fixture: no url.\nfeeds:\n  - url: https://a.org/rss\n  - title: X\n",
                    "4:5", "this feed has no 'url'"),
    "relative-url": ("# Fixture: a path.\nfeeds:\n  - url: /rss.xml\n", "3:10",
                     "'url' must be an absolute http(s) URL, got '/rss.xml'"),
    "ftp-url": ("# Fixture: not http.\nfeeds:\n  - url: ftp://a.org/rss\n", "3:10",
                "absolute http(s) URL"),
    "bad-interval": ("# Fixture: words.\nfeeds:\n  - url: https://a.org/rss\n"
                     "    interval: 10 minutes\n", "4:15", "bad duration '10 minutes'"),
    "short-interval": ("# Fixture: below 1m.\nfeeds:\n  - url: https://a.org/rss\n"
                       "    interval: 30s\n", "4:15", "'interval' must be at least 1m"),
    "unitless-interval": ("# Fixture: no unit.\nfeeds:\n  - url: https://a.org/rss\n"
                          "    interval: 10\n", "4:15", "duration with a unit"),
    "tags-not-list": ("# Fixture: a string.\nfeeds:\n  - url: https://a.org/rss\n"
                      "    tags: asia\n", "4:11", "'tags' must be a list"),
    "tag-not-string": ("# Fixture: a number.\nfeeds:\n  - url: https://a.org/rss\n"
                       "    tags: [asia, 3]\n", "4:18", "bad entry 3 in 'tags'"),
    "region-shape": ("# Fixture: a sentence.\nfeeds:\n  - url: https://a.org/rss\n"
                     "    regions: [TW, South Korea]\n", "4:19", "bad entry 'South Korea'"),
    "enabled-not-bool": ("# Fixture: yes is a string in YAML 1.2.\nfeeds:\n"
                         "  - url: https://a.org/rss\n    enabled: yes\n", "4:14",
                         "'enabled' must be true or false"),
    "title-not-string": ("# Fixture: a number.\nfeeds:\n  - url: https://a.org/rss\n"
                         "    title: 1984\n", "4:12", "'title' must be a non-empty string"),
    "bad-id": ("# Fixture: capitals.\nfeeds:\n  - url: https://a.org/rss\n    id: Bad_ID\n",
               "4:9", "bad feed id 'Bad_ID'"),
    "duplicate-id": ("# Fixture: id twice.\nfeeds:\n  - url: https://a.org/1\n    id: a\n"
                     "  - url: https://a.org/2\n    id: a\n", "5:5",
                     "duplicate feed id 'a': used on line 3 and 5"),
    "derived-id-collides": ("# Fixture: explicit id equal to the next one's derived id.\n"
                            "feeds:\n  - url: https://a.org/1\n    id: b-org-rss\n"
                            "  - url: https://b.org/rss.xml\n", "5:5",
                            "duplicate feed id 'b-org-rss' (derived from the url on line 5): "
                            "used on line 3 and 5"),
    "duplicate-url": ("# Fixture: same URL, host case differs.\nfeeds:\n"
                      "  - url: https://a.org/rss\n  - url: https://A.org/rss\n    id: other\n",
                      "4:5", "duplicate feed url 'https://A.org/rss': already listed on line 3"),
    "settings-not-mapping": ("# Fixture: a number.\nsettings: 4\n", "2:11",
                             "'settings' must be a mapping"),
    "concurrency-zero": ("# Fixture: zero.\nsettings:\n  concurrency: 0\n", "3:16",
                         "'concurrency' must be a whole number of at least 1, got 0"),
    "bad-size": ("# Fixture: no such unit.\nsettings:\n  max_body: 10 parsecs\n", "3:13",
                 "bad size '10 parsecs'"),
    "bad-timeout": ("# Fixture: words.\nsettings:\n  timeout: {read: fast}\n", "3:19",
                    "'timeout.read': bad duration 'fast'"),
    "short-retention": ("# Fixture: an hour.\nsettings:\n  retention: 1h\n", "3:14",
                        "'retention' must be at least 1d"),
    "empty-user-agent": ("# Fixture: empty.\nsettings:\n  user_agent: ''\n", "3:15",
                         "'user_agent' must be a non-empty string"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "where", "words"), ERRORS.values(), ids=ERRORS.keys())
def test_each_error_names_file_line_and_column(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert str(caught.value).startswith(f"{path}:{where}: "), str(caught.value)
    assert words in caught.value.message


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"feeds:\n  - url: https://a.org/rss\n    title: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"feeds\.yaml:3:15: the file is not UTF-8"):
        load_feeds(path)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "10 m", "-5m", "10y", "1h 30m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_duration_reads_back(seconds: int) -> None:
    text = format_duration(timedelta(seconds=seconds))
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert re.fullmatch(r"\d+[smhdw]", text)


def test_derive_feed_id_examples() -> None:
    assert derive_feed_id("https://www.example.org/rss.xml") == "example-org-rss"
    assert derive_feed_id("http://127.0.0.1:8123/feeds/asia.atom") == "127-0-0-1-feeds-asia"
    assert derive_feed_id("https://example.org/rss.xml", {"example-org-rss"}) == "example-org-rss-2"
    taken = {"example-org-rss", "example-org-rss-2"}
    assert derive_feed_id("https://example.org/rss.xml", taken) == "example-org-rss-3"


@given(st.text(max_size=300), st.sets(st.text(max_size=70), max_size=5))
def test_derived_ids_are_always_valid_and_free(url: str, taken: set[str]) -> None:
    feed_id = derive_feed_id(f"https://{url}", taken)
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", feed_id) and len(feed_id) <= 64
    assert feed_id not in taken


# --- editing ---------------------------------------------------------------------------------

COMMENTED = """\
# Fixture: comments everywhere. Expect: edits leave every other line as it is.
settings:
  concurrency: 8   # end-of-line comment in settings

feeds:
  # The Asia wire: glued to the first feed
  - url: https://a.example.org/rss   # why this feed
    id: a
  # Japan desk: glued to the second feed
  - url: https://b.example.org/rss
    tags: [japan]

  # A comment followed by a blank line belongs to the list.

  - url: "https://c.example.org/rss"
    id: c
# trailing comment
"""


def test_add_appends_after_the_last_feed_and_keeps_everything_else(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    feed = edit.add("https://d.example.org/news", title="D: news", tags=["asia"], interval="1h")
    edit.save()
    assert feed == Feed(
        id="d-example-org-news",
        url="https://d.example.org/news",
        title="D: news",
        tags=("asia",),
        interval=timedelta(hours=1),
    )
    added = (
        "  - url: https://d.example.org/news\n"
        "    id: d-example-org-news\n"
        "    title: 'D: news'\n"
        "    tags: [asia]\n"
        "    interval: 1h\n"
    )
    expected = COMMENTED.replace("    id: c\n", "    id: c\n" + added)
    assert path.read_text(encoding="utf-8") == expected
    assert load_feeds(path).feeds[-1] == feed


def test_remove_takes_the_feed_and_its_glued_comment_only(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    removed = edit.remove("b-example-org-rss")  # a derived id
    edit.save()
    assert removed.url == "https://b.example.org/rss"
    glued = "  # Japan desk: glued to the second feed\n  - url: https://b.example.org/rss\n"
    assert path.read_text(encoding="utf-8") == COMMENTED.replace(glued + "    tags: [japan]\n", "")


def test_remove_last_keeps_the_trailing_comment(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    edit.remove("c")
    text = edit.text
    kept = "  # A comment followed by a blank line belongs to the list.\n\n# trailing comment\n"
    assert text.endswith("    tags: [japan]\n\n" + kept)
    assert [f.id for f in load_feeds(write(tmp_path, text)).feeds] == ["a", "b-example-org-rss"]


def test_remove_then_add_keeps_order(tmp_path: Path) -> None:
    edit = FeedsFile.load(write(tmp_path, COMMENTED))
    edit.remove("a")
    edit.add("https://a.example.org/rss", id="a")
    assert [f.id for f in edit.feeds] == ["b-example-org-rss", "c", "a"]
    assert "# why this feed" not in edit.text  # it went with its line
    assert "# trailing comment" in edit.text and "concurrency: 8   # end-of-line" in edit.text


@pytest.mark.parametrize(
    "text", ["", "# Fixture: no feeds key.\nsettings: {concurrency: 2}\n", "feeds: []  # none\n",
             "feeds:\n"],
    ids=["empty", "no-feeds-key", "empty-flow-list", "null"],
)  # fmt: skip
def test_add_to_a_file_without_feeds(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    edit = FeedsFile.load(path)
    edit.add("https://a.org/rss")
    edit.save()
    assert [f.url for f in load_feeds(path).feeds] == ["https://a.org/rss"]
    assert path.read_text(encoding="utf-8").startswith(text.replace("[]  ", "").split("\n")[0])


def test_add_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "rules" / "feeds.yaml"
    edit = FeedsFile.load(path)
    edit.add("https://a.org/rss", id="a")
    edit.save()
    assert path.read_text(encoding="utf-8") == "feeds:\n  - url: https://a.org/rss\n    id: a\n"


def test_add_to_a_flow_style_list_falls_back_to_the_tree(tmp_path: Path) -> None:
    path = write(
        tmp_path, "# Fixture: flow list. Expect: still edited.\nfeeds: [{url: https://a.org/1}]\n"
    )
    edit = FeedsFile.load(path)
    edit.add("https://a.org/2", id="two")
    edit.remove("a-org-1")
    edit.save()
    assert [f.id for f in load_feeds(path).feeds] == ["two"]
    assert path.read_text(encoding="utf-8").startswith("# Fixture: flow list.")


def test_many_adds_are_written_together(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    for n in range(100):
        edit.add(f"https://many.example.org/{n}", tags=["bulk"])
    edit.save()
    feeds = load_feeds(path).feeds
    assert len(feeds) == 103 and feeds[-1].id == "many-example-org-99"


def test_add_refuses_a_url_already_present(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    with pytest.raises(ConfigError, match=r"feeds\.yaml: a feed with url .* already .*\(id 'a'\)"):
        edit.add("https://A.example.org:443/rss")
    assert edit.has_url("https://c.example.org/rss") and not edit.has_url("https://x.org/")


def test_add_refuses_a_duplicate_id(tmp_path: Path) -> None:
    edit = FeedsFile.load(write(tmp_path, COMMENTED))
    with pytest.raises(ConfigError, match="a feed with id 'c' is already in the file"):
        edit.add("https://new.example.org/rss", id="c")


def test_add_derives_a_free_id(tmp_path: Path) -> None:
    edit = FeedsFile.load(write(tmp_path, "feeds:\n  - url: https://a.org/x\n    id: b-org-rss\n"))
    assert edit.add("https://b.org/rss.xml").id == "b-org-rss-2"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"url": "a.org/rss"}, "absolute http(s) URL"),
        ({"url": "https://a.org/r", "id": "No"}, "bad feed id 'No'"),
        ({"url": "https://a.org/r", "tags": ["two words"]}, "bad entry 'two words' in 'tags'"),
        ({"url": "https://a.org/r", "interval": "5s"}, "'interval' must be at least 1m"),
    ],
)
def test_add_validates_like_the_file(tmp_path: Path, kwargs: dict[str, str], words: str) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    with pytest.raises(ConfigError) as caught:
        edit.add(**kwargs)
    assert str(caught.value).startswith(f"{path}: ") and words in str(caught.value)


def test_remove_unknown_id(tmp_path: Path) -> None:
    edit = FeedsFile.load(write(tmp_path, COMMENTED))
    with pytest.raises(ConfigError, match=r"no feed with id 'zz' \(known ids: a, b-example"):
        edit.remove("zz")


def test_a_bad_hand_edit_is_reported_and_not_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    edit.add("https://d.example.org/rss")
    broken = COMMENTED.replace("    id: c\n", "    id: c\n    enabled: maybe\n")
    path.write_text(broken, encoding="utf-8")  # the user edits while the CLI holds the file
    with pytest.raises(ConfigError, match=r"feeds\.yaml:17:14: 'enabled' must be true or false"):
        load_feeds(path)
    with pytest.raises(ConfigError, match=r"feeds\.yaml:17:14"):
        FeedsFile.load(path)
    with pytest.raises(ConfigError, match=r"feeds\.yaml:17:14"):  # the edit is not made on it
        edit.save()
    assert path.read_text(encoding="utf-8") == broken


def test_save_failing_midway_leaves_the_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, COMMENTED)
    edit = FeedsFile.load(path)
    edit.add("https://d.example.org/rss")

    def disk_full(*_: object) -> None:  # the new text is written; the rename fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ConfigError, match=r"feeds\.yaml: cannot write: No space left on device"):
        edit.save()
    assert path.read_text(encoding="utf-8") == COMMENTED
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".feeds.yaml.lock", "feeds.yaml"]  # no temp file left
    monkeypatch.undo()
    edit.save()  # and the edit is still there to save once the disk has room
    assert load_feeds(path).feeds[-1].url == "https://d.example.org/rss"


def test_save_keeps_the_file_mode(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)
    path.chmod(0o640)
    edit = FeedsFile.load(path)
    edit.remove("a")
    edit.save()
    assert path.stat().st_mode & 0o777 == 0o640


@given(st.text(max_size=80))
def test_any_url_text_is_accepted_or_refused_cleanly(tail: str) -> None:
    edit = FeedsFile(Path("feeds.yaml"), "", None)  # in memory: nothing is written
    try:
        feed = edit.add(f"https://{tail}")
    except ConfigError as error:
        assert error.path == "feeds.yaml"
    else:
        assert feed.url.startswith("https://") and edit.feeds == (feed,)

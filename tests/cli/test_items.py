"""`monitor items search` and `monitor items show`, in-process on a real rules folder, feed
server and SQLite file; the digest an item went out in is sent to a real SMTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.store import Store
from tests.cli.test_poll_command import rss_dated
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve

RULES = """\
rules:
  - id: strait
    title: Strait
    query: '"Taiwan Strait" OR 台湾海峡'
  - id: dprk
    title: DPRK missiles
    query: 'ミサイル OR missile'
"""


def run(rules: Path, db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), *args])


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    """Feed `wire` (tag asia) serving TWO, fresh news, polled once with RULES."""
    rules, db = tmp_path / "rules", tmp_path / "monitor.db"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "asia.yaml").write_text(RULES, encoding="utf-8")
    with FeedServer() as server:
        url = server.add("/wire.xml", serve(TWO))
        feeds = f"feeds:\n  - url: {url}\n    id: wire\n    title: Asia Wire\n    tags: [asia]\n"
        (rules / "feeds.yaml").write_text(feeds, encoding="utf-8")
        assert run(rules, db, "poll").exit_code == 0
        yield server, rules, db


def titles(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["title"] for line in result.output.splitlines()]


def test_several_words_unquoted_are_all_searched(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    found = run(rules, db, "items", "search", "北朝鮮", "ミサイル", "--json")
    assert titles(found) == ["北朝鮮がミサイル発射"]
    assert titles(run(rules, db, "items", "search", "北朝鮮", "drills", "--json")) == []


def test_or_and_not_work_as_in_rules(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    both = titles(run(rules, db, "items", "search", "北朝鮮", "OR", "drills", "--json"))
    assert sorted(both) == ["PLA drills near the Taiwan Strait", "北朝鮮がミサイル発射"]
    # `-word` is an exclusion, not an option; `NOT` too.
    minus = titles(run(rules, db, "items", "search", "北朝鮮", "OR", "drills", "-pla", "--json"))
    assert minus == ["北朝鮮がミサイル発射"]
    assert titles(run(rules, db, "items", "search", "tag:asia NOT ミサイル", "--json")) == [
        "PLA drills near the Taiwan Strait"
    ]


def test_a_bad_query_is_one_clear_line(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    result = run(rules, db, "items", "search", "(taiwan", "OR", "china")
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("monitor: search: column 1 of '(taiwan OR china'") and "')'" in line


def test_times_carry_their_zone(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    tokyo = run(rules, db, "items", "search", "北朝鮮", "--tz", "Asia/Tokyo")
    assert tokyo.exit_code == 0
    assert tokyo.output.splitlines()[0].split("  ")[0].endswith("+09:00")
    [doc] = [json.loads(x) for x in run(rules, db, "items", "search", "北朝鮮", "--json",
                                        "--tz", "UTC").output.splitlines()]  # fmt: skip
    assert doc["published"].endswith("+00:00") and doc["first_seen"].endswith("+00:00")
    bad = run(rules, db, "items", "search", "北朝鮮", "--tz", "Mars/Olympus")
    assert bad.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in bad.output


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is India's (+05:30, no daylight saving) for a test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_default_zone_is_the_local_one(
    polled: tuple[FeedServer, Path, Path], kolkata: None
) -> None:
    _server, rules, db = polled
    shown = run(rules, db, "items", "search", "北朝鮮")
    assert "+05:30  wire  北朝鮮がミサイル発射" in shown.output
    lines = run(rules, db, "items", "search", "--json").output.splitlines()
    assert all(json.loads(line)["published"].endswith("+05:30") for line in lines)


def item_id(rules: Path, db: Path, query: str) -> int:
    [line] = run(rules, db, "items", "search", query, "--json").output.splitlines()
    return int(json.loads(line)["id"])


def test_show_prints_an_item_whole(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    ident = item_id(rules, db, '"Taiwan Strait"')
    shown = run(rules, db, "items", "show", str(ident), "--tz", "UTC")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert text.startswith(f"item {ident}\n")
    assert "  feed:       wire (Asia Wire)" in text
    assert "  link:       https://news.example.org/a1" in text
    assert "  regions:    " in text and "TW" in text
    assert "strait: score 0, matched " in text and ", alert" in text
    assert '"Taiwan Strait" in title [20:33]: PLA drills near the [Taiwan Strait]\n' in text
    assert '"Taiwan Strait" in summary [20:33]: PLA drills near the [Taiwan Strait] & more' in text
    assert "digests: none" in text

    doc = json.loads(run(rules, db, "items", "show", str(ident), "--json").output)
    assert doc["id"] == ident and doc["feed"] == "wire" and doc["feed_title"] == "Asia Wire"
    [match] = doc["matches"]
    assert (match["rule"], match["history"]) == ("strait", False)
    assert match["hits"] == [
        {
            "term": '"Taiwan Strait"',
            "field": "title",
            "start": 20,
            "end": 33,
            "context": "PLA drills near the [Taiwan Strait]",
        },
        {
            "term": '"Taiwan Strait"',
            "field": "summary",
            "start": 20,
            "end": 33,
            "context": "PLA drills near the [Taiwan Strait] & more",
        },
    ]
    assert doc["digests"] == []


def test_show_says_when_a_match_is_history(tmp_path: Path) -> None:
    rules, db = tmp_path / "rules", tmp_path / "monitor.db"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "asia.yaml").write_text(RULES, encoding="utf-8")
    old = rss_dated(("old", datetime.now(UTC) - timedelta(days=30)))
    with FeedServer() as server:
        url = server.add("/old.xml", serve(old))
        (rules / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    id: old\n")
        assert run(rules, db, "poll").exit_code == 0
    ident = item_id(rules, db, "report")
    text = run(rules, db, "items", "show", str(ident)).output
    assert "history (old news when first seen: never delivered)" in text
    doc = json.loads(run(rules, db, "items", "show", str(ident), "--json").output)
    assert doc["matches"][0]["history"] is True


def test_show_of_an_unknown_id_is_one_line(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    result = run(rules, db, "items", "show", "999")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"monitor: no item with id 999 in {db} (find item ids with `monitor items search`)"
    )


def test_show_lists_the_digests_an_item_went_out_in(
    polled: tuple[FeedServer, Path, Path],
) -> None:
    from tests.support.receivers import SmtpCatcher

    _server, rules, db = polled
    with SmtpCatcher() as smtp:
        (rules / "channels.yaml").write_text(
            "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
            f" smtp: {{host: 127.0.0.1, port: {smtp.port}}}}}\n"
            "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
            encoding="utf-8",
        )
        sent = run(rules, db, "digest", "send")
        assert sent.exit_code == 0, sent.output
        assert len(smtp.messages) == 1
    ident = item_id(rules, db, '"Taiwan Strait"')
    doc = json.loads(run(rules, db, "items", "show", str(ident), "--json").output)
    [digest] = doc["digests"]
    assert (digest["route"], digest["receiver"], digest["status"]) == (
        "desk-now",
        "desk",
        "delivered",
    )
    with Store(db) as store:
        assert store._rows("SELECT id FROM digests")[0]["id"] == digest["id"]
    text = run(rules, db, "items", "show", str(ident)).output
    assert f"  {digest['id']}: route desk-now to desk, delivered (frozen " in text


def test_a_mistyped_option_is_not_searched_for(polled: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = polled
    result = run(rules, db, "items", "search", "taiwan", "--sinse", "2d")
    assert result.exit_code == 2 and "no such option: --sinse" in result.output


def test_the_text_around_a_hit_is_cut_to_its_neighbourhood() -> None:
    from monitor.cli.items import context
    from monitor.match.rule import Hit

    text = "x" * 100 + " Taiwan Strait " + "y" * 100
    start = text.index("Taiwan")
    shown = context(text, Hit('"Taiwan Strait"', "title", start, start + 13), width=5)
    assert shown == "…xxxx [Taiwan Strait] yyyy…"
    # Where folding changes the length (ß is ss), the folded text is shown: offsets fit it.
    folded = context("Straße Taiwan", Hit("taiwan", "title", 8, 14))
    assert folded == "strasse [taiwan]"


def test_a_filter_naming_nothing_known_says_so(polled: tuple[FeedServer, Path, Path]) -> None:
    # A typo in a filter must not read as "no news": each unknown name is said, with the
    # closest known one; the search still exits 0, and --json keeps standard output clean.
    _server, rules, db = polled
    typo = run(rules, db, "items", "search", "--rule", "dprk-missiles", "--region", "taiwan")
    assert typo.exit_code == 0 and typo.stdout == ""
    alerts = rules / "alerts"
    assert typo.stderr.splitlines() == [
        "no items found: no region has the code 'taiwan' (did you mean TW?)",
        f"no items found: no rule has the id 'dprk-missiles' in {alerts} (did you mean dprk?)",
    ]
    wrong = run(rules, db, "items", "search", "--feed", "wir", "--entity", "xi-jinpin", "--json")
    assert wrong.exit_code == 0 and wrong.stdout == ""
    assert "no entity has the id 'xi-jinpin' (did you mean xi-jinping?)" in wrong.stderr
    assert (
        f"no feed has the id 'wir' in {rules / 'feeds.yaml'} (did you mean wire?)" in wrong.stderr
    )
    # Names that exist: nothing found is only that.
    known = run(
        rules, db, "items", "search", "nothing-like-this", "--rule", "dprk", "--region", "KP"
    )
    assert known.stderr == "no items found\n"

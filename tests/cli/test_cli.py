"""The `monitor` commands, run in-process on a real rules folder, database and feed server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.store import Store
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve, status

FEEDS = """\
# Our sources. This comment must survive CLI edits.
feeds:
  - url: {good}
    id: good        # the wire
    tags: [asia]
  - url: {bad}
    id: bad
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules, db = tmp_path / "rules", tmp_path / "state" / "monitor.db"
    rules.mkdir()
    with FeedServer() as server:
        good = server.add("/good.xml", serve(TWO))
        bad = server.add("/bad.xml", status(500))
        (rules / "feeds.yaml").write_text(FEEDS.format(good=good, bad=bad), encoding="utf-8")
        yield server, rules, db


def run(rules: Path, db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), *args])


def test_poll_prints_a_summary_and_status_shows_health(env: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = env
    result = run(rules, db, "poll")
    assert result.exit_code == 0, result.output
    assert "polled 2 feeds" in result.output
    assert "1 ok, 0 not modified, 1 failed" in result.output
    assert "items: 2 new, 0 updated; 0 rule matches" in result.output
    assert "! bad: HTTP 500" in result.output

    shown = run(rules, db, "status")
    assert "2 feeds (1 failing or gone), 2 items stored" in shown.output
    doc = json.loads(run(rules, db, "status", "--json").output)
    health = {f["id"]: f["health"] for f in doc["feeds"]}
    assert health == {"good": "ok", "bad": "failing x1"}
    assert doc["items"] == 2


def test_items_search_finds_cjk_and_prints_json(env: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = env
    run(rules, db, "poll")
    found = run(rules, db, "items", "search", "北朝鮮", "--json")
    rows = [json.loads(line) for line in found.output.splitlines()]
    assert [r["title"] for r in rows] == ["北朝鮮がミサイル発射"]
    assert rows[0]["feed"] == "good"
    assert "Taiwan Strait" in run(rules, db, "items", "search", '"Taiwan Strait"').output
    nothing = run(rules, db, "items", "search", "nothing-like-this", "--since", "1d")
    assert nothing.exit_code == 0 and "no items found" in nothing.output


def test_feeds_add_list_remove_keep_comments(env: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = env
    news = server.add("/news.xml", serve(TWO))  # `feeds add` fetches it: served here, offline
    added = run(
        rules,
        db,
        "feeds",
        "add",
        news,
        "--tag",
        "wire",
        "--interval",
        "10m",
    )
    assert added.exit_code == 0, added.output
    text = (rules / "feeds.yaml").read_text(encoding="utf-8")
    assert "# Our sources. This comment must survive CLI edits." in text
    assert "# the wire" in text and news in text

    listed = run(rules, db, "feeds", "list", "--json").output.splitlines()
    assert [json.loads(line)["id"] for line in listed][:2] == ["good", "bad"]
    assert len(listed) == 3

    assert run(rules, db, "feeds", "remove", "bad").exit_code == 0
    ids = [
        json.loads(line)["id"]
        for line in run(rules, db, "feeds", "list", "--json").output.splitlines()
    ]
    assert "bad" not in ids and "good" in ids
    assert "# the wire" in (rules / "feeds.yaml").read_text(encoding="utf-8")


def test_feeds_add_refuses_a_duplicate(env: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = env
    result = run(rules, db, "feeds", "add", server.url("/good.xml"))
    assert result.exit_code == 1
    assert "monitor:" in result.output and "already" in result.output


def test_opml_export_then_import_round_trips(
    env: tuple[FeedServer, Path, Path], tmp_path: Path
) -> None:
    _server, rules, db = env
    opml = tmp_path / "feeds.opml"
    assert run(rules, db, "feeds", "export", "-o", str(opml)).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    imported = run(other, db, "feeds", "import", str(opml))
    assert imported.exit_code == 0, imported.output
    assert "imported 2 feeds" in imported.output
    again = run(other, db, "feeds", "import", str(opml))
    assert "imported 0 feeds" in again.output and "2 already present" in again.output


def test_a_bad_edit_gives_one_clear_error_and_keeps_the_data(
    env: tuple[FeedServer, Path, Path],
) -> None:
    _server, rules, db = env
    run(rules, db, "poll")
    (rules / "feeds.yaml").write_text(
        "feeds:\n  - url: https://example.org/a.xml\n    intervall: 10m\n", encoding="utf-8"
    )
    result = run(rules, db, "poll")
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("monitor: ") and "feeds.yaml:3:5" in line and "interval" in line
    with Store(db) as store:
        assert store.count_items() == 2


def test_demo_runs_the_pipeline_offline(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "first poll (empty database)" in result.output
    with Store(tmp_path / "demo.db") as store:
        assert store.count_items() >= 80
    assert (tmp_path / "demo" / "rules" / "feeds.yaml").exists()
    # A real email and a real signed webhook reached the demo's local receivers.
    assert "digests delivered to the local SMTP server and webhook receiver" in result.output
    eml = (tmp_path / "demo" / "digest-1.eml").read_bytes()
    assert b"Message-ID: <" in eml
    webhook = json.loads((tmp_path / "demo" / "webhook-1.json").read_bytes())
    assert webhook["version"] == "1" and webhook["groups"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.4, "0s"),
        (59, "59s"),
        (970.6, "16m"),
        (3600 + 5 * 60, "1h05m"),
        (3 * 86400 + 4 * 3600, "3d04h"),
    ],
)
def test_durations_are_shown_for_people(seconds: float, shown: str) -> None:
    from datetime import timedelta

    from monitor.cli.report import span

    assert span(timedelta(seconds=seconds)) == shown
    assert span(-timedelta(seconds=seconds)) == shown

"""`monitor poll` and `monitor status`, in-process on a real rules folder, feed server and
SQLite file: which feeds a poll takes, what it says about the others, its exit status, and
the matches kept as history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.models import CycleSummary, FetchStatus, PollOutcome
from monitor.service.logs import summary_line
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve, status, with_etag

RULE = "rules:\n  - id: strait\n    title: Strait\n    query: '\"Taiwan Strait\"'\n"


def run(rules: Path, db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), *args])


def write_feeds(rules: Path, *entries: str) -> None:
    (rules / "feeds.yaml").write_text("feeds:\n" + "".join(entries), encoding="utf-8")


def entry(feed_id: str, url: str, extra: str = "") -> str:
    return f"  - url: {url}\n    id: {feed_id}\n    interval: 1h\n{extra}"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "strait.yaml").write_text(RULE, encoding="utf-8")
    with FeedServer() as server:
        yield server, rules, tmp_path / "monitor.db"


def test_poll_takes_every_feed_now_whatever_its_interval(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    write_feeds(rules, entry("wire", server.add("/wire.xml", with_etag(TWO))))
    assert run(rules, db, "poll").exit_code == 0
    again = run(rules, db, "poll")  # an hour's interval has not passed: polled all the same
    assert again.exit_code == 0, again.output
    assert "polled 1 feeds" in again.output and "1 not modified" in again.output
    assert len(server.requests_to("/wire.xml")) == 2


def test_a_backing_off_feed_is_named_and_force_polls_it(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    good, bad = server.add("/good.xml", serve(TWO)), server.add("/bad.xml", status(500))
    write_feeds(rules, entry("good", good), entry("bad", bad))
    first = run(rules, db, "poll")
    assert first.exit_code == 0 and "! bad: HTTP 500" in first.output  # one feed worked

    second = run(rules, db, "poll")
    assert "polled 1 feeds" in second.output
    assert "  - bad: backing off after errors, next try in " in second.output
    assert "`monitor poll --force` polls them now" in second.output
    assert len(server.requests_to("/bad.xml")) == 1

    only = run(rules, db, "poll", "--feed", "bad")  # asked for, still backing off
    assert "polled 0 feeds" in only.output and "bad: backing off" in only.output
    assert only.exit_code == 0 and len(server.requests_to("/bad.xml")) == 1

    forced = run(rules, db, "poll", "--force")
    assert "polled 2 feeds" in forced.output and "backing off" not in forced.output
    assert len(server.requests_to("/bad.xml")) == 2

    forced_one = run(rules, db, "poll", "--force", "--feed", "bad")
    assert "polled 1 feeds" in forced_one.output
    assert len(server.requests_to("/bad.xml")) == 3
    assert forced_one.exit_code == 1  # every feed it polled failed


def test_a_poll_where_every_feed_failed_exits_1(setup: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = setup
    write_feeds(
        rules,
        entry("down", server.add("/down.xml", status(503))),
        entry("html", server.add("/page", serve(b"<html><body>hi</body></html>", "text/html"))),
    )
    result = run(rules, db, "poll")
    assert result.exit_code == 1
    assert "0 ok, 0 not modified, 2 failed" in result.output
    assert "! down: HTTP 503" in result.output and "! html:" in result.output


def test_poll_says_why_a_feed_asked_for_was_not_polled(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    off = server.add("/off.xml", serve(TWO))
    write_feeds(rules, entry("off", off, "    enabled: false\n"))
    result = run(rules, db, "poll", "--feed", "off")
    assert "  - off: disabled (enabled: false in feeds.yaml)" in result.output
    assert server.requests_to("/off.xml") == []


def test_poll_says_a_gone_feed_is_no_longer_polled(setup: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = setup
    old = server.add("/old.xml", status(410))
    write_feeds(rules, entry("old", old), entry("wire", server.add("/wire.xml", serve(TWO))))
    assert "polled 2 feeds" in run(rules, db, "poll").output
    again = run(rules, db, "poll", "--force")
    assert "polled 1 feeds" in again.output
    assert "  - old: gone (HTTP 410); remove and re-add it to try again" in again.output
    assert len(server.requests_to("/old.xml")) == 1


def rss_dated(*entries: tuple[str, datetime]) -> bytes:
    items = "".join(
        f"<item><guid>{escape(g)}</guid><title>Taiwan Strait report {escape(g)}</title>"
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate></item>"
        for g, when in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def test_poll_and_status_count_the_matches_kept_as_history(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    now = datetime.now(UTC)
    body = rss_dated(("old", now - timedelta(days=90)), ("fresh", now - timedelta(minutes=5)))
    write_feeds(rules, entry("wire", server.add("/wire.xml", serve(body))))
    polled = run(rules, db, "poll")
    assert "items: 2 new, 0 updated; 2 rule matches, 1 kept as history" in polled.output

    shown = run(rules, db, "status")
    assert "2 rule matches (1 kept as history: old news, never alerted)" in shown.output
    doc = json.loads(run(rules, db, "status", "--json").output)
    assert (doc["matches"], doc["history"]) == (2, 1)


def test_the_service_cycle_line_counts_history() -> None:
    outcomes = (PollOutcome("a", FetchStatus.OK, new=3, matches=3, history=2),)
    line = summary_line(CycleSummary(outcomes=outcomes, elapsed=0.25))
    assert "3 rule matches (2 kept as history) in 0.2 s" in line

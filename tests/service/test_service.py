"""`monitor run` as a real subprocess against a real feed server: poll, reload, stop cleanly."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from monitor.store import Store
from tests.ingest.test_poll import TWO, rss
from tests.support.feedserver import FeedServer, serve
from tests.support.service import WAIT, RunningService, monitor_once


def Service(rules: Path, db: Path) -> RunningService:
    return RunningService(rules, db)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    with FeedServer() as server:
        yield server, rules, tmp_path / "state" / "monitor.db"


def write_feeds(rules: Path, *urls: str) -> None:
    lines = ["feeds:"] + [f"  - url: {u}\n    interval: 1m" for u in urls]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_run_polls_reloads_and_stops_cleanly(setup: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = setup
    write_feeds(rules, server.add("/one.xml", serve(TWO)))
    service = Service(rules, db)
    try:
        service.wait_for("poll cycle: 1 feeds (1 ok")
        with Store(db) as store:  # the CLI side reads while the service runs
            assert store.count_items() == 2

        (rules / "feeds.yaml").write_text("feeds:\n  - url: [oops\n", encoding="utf-8")
        error = service.wait_for("keeping the last good feeds")
        assert "feeds.yaml:" in error

        write_feeds(rules, server.url("/one.xml"), server.add("/two.xml", serve(rss(("b", "x")))))
        service.wait_for("reloaded")
        service.wait_for("poll cycle: 1 feeds (1 ok")  # only the new feed is due
    finally:
        code = service.stop()
    assert code == 0
    service.wait_for("monitor stopped")
    with Store(db) as store:
        assert store.count_items() == 3


def test_sigterm_during_a_hanging_poll_exits_in_time(setup: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = setup
    from tests.support.feedserver import stall

    write_feeds(rules, server.add("/hang.xml", stall()))
    service = Service(rules, db)
    service.wait_for("monitor running")
    assert server.wait_for_in_flight(1, WAIT)  # the poll is stuck inside the request
    started = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - started < 10


def test_an_invalid_feeds_file_refuses_to_start(setup: tuple[FeedServer, Path, Path]) -> None:
    _server, rules, db = setup
    (rules / "feeds.yaml").write_text("feeds:\n  - url: ftp://nowhere\n", encoding="utf-8")
    result = monitor_once("--rules", str(rules), "--db", str(db), "run")
    assert result.returncode == 1
    assert "feeds.yaml:2" in result.stderr


def test_rule_edits_reload_and_a_broken_rule_keeps_the_last_good_set(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    alerts = rules / "alerts"
    alerts.mkdir()
    rule = "rules:\n  - id: strait\n    title: Strait\n    query: '{query}'\n"
    (alerts / "asia.yaml").write_text(rule.format(query='"Taiwan Strait"'), encoding="utf-8")
    write_feeds(rules, server.add("/one.xml", serve(TWO)))
    service = Service(rules, db)
    try:
        service.wait_for("1 rule matches")
        (alerts / "asia.yaml").write_text(rule.format(query="(taiwan OR"), encoding="utf-8")
        error = service.wait_for("keeping the last good rules")
        assert "asia.yaml:4" in error
        (alerts / "asia.yaml").write_text(rule.format(query="ミサイル"), encoding="utf-8")
        service.wait_for("reloaded rules")
        write_feeds(
            rules, server.url("/one.xml"), server.add("/two.xml", serve(rss(("b", "ミサイル発射"))))
        )
        service.wait_for("1 rule matches")  # the new feed's item, matched by the new rule
    finally:
        assert service.stop() == 0
    with Store(db) as store:
        assert store.match_counts() == {"strait": 2}


def test_an_immediate_route_is_delivered_by_the_running_service(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    from tests.support.receivers import SmtpCatcher

    server, rules, db = setup
    alerts = rules / "alerts"
    alerts.mkdir()
    rule = "rules:\n  - id: strait\n    title: Strait\n    query: '\"Taiwan Strait\"'\n"
    (alerts / "asia.yaml").write_text(rule, encoding="utf-8")
    write_feeds(rules, server.add("/one.xml", serve(TWO)))
    with SmtpCatcher() as smtp:
        (rules / "channels.yaml").write_text(
            "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
            f" smtp: {{host: 127.0.0.1, port: {smtp.port}}}}}\n"
            "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
            encoding="utf-8",
        )
        service = Service(rules, db)
        try:
            service.wait_for("delivered to desk")
        finally:
            assert service.stop() == 0
        [mail] = smtp.messages
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "PLA drills near the Taiwan Strait" in text.get_content()
    assert list(mail.rcpt_tos) == ["desk@example.org"]

"""The delivery job of `monitor run`, as a real subprocess: a mail server that never answers
holds up no poll, an immediate alert leaves as soon as its feed is stored, and whatever a mail
server echoes back never shows a secret.

Real parts only: feed servers on loopback, aiosmtpd, a raw TCP server that accepts and stays
silent (or quotes the login back), real SQLite files. Every wait ends on an event or a
condition polled against a deadline.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.store import Store
from monitor.store.outbox import Outbox
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve, stall
from tests.support.lineserver import LineServer, echoing_smtp, silent
from tests.support.receivers import SmtpCatcher
from tests.support.service import WAIT, RunningService

RULE = "rules:\n  - id: strait\n    title: Strait\n    query: '\"Taiwan Strait\"'\n"
SCHEDULER_WORDS = ("maximum number of running instances", "was missed by")


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    (folder / "alerts").mkdir(parents=True)
    (folder / "alerts" / "asia.yaml").write_text(RULE, encoding="utf-8")
    return folder


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as feeds:
        yield feeds


def write_feeds(rules: Path, *urls: str, settings: str = "") -> None:
    lines = [settings, "feeds:"] + [f"  - url: {u}\n    interval: 1m" for u in urls]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_channels(rules: Path, port: int, *, timeout: str = "30s", login: str = "") -> None:
    (rules / "channels.yaml").write_text(
        "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
        f" smtp: {{host: 127.0.0.1, port: {port}, timeout: {timeout}{login}}}}}\n"
        "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
        encoding="utf-8",
    )


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def poll_again(db: Path) -> None:
    """Make the one feed due now, as if its interval had passed, and wait until the service
    has polled it and recorded the poll (a minute is too long to wait in a test)."""
    with Store(db) as store:
        [state] = store.states().values()
        store.save_state(dataclasses.replace(state, next_due=datetime.now(UTC)))

    def polled() -> bool:
        with Store(db) as store:
            now = store.get_state(state.feed_id)
        assert now is not None
        return now.last_attempt is not None and now.last_attempt != state.last_attempt

    eventually(polled, "the service polled the feed again")


def test_a_silent_mail_server_never_holds_up_polling(
    rules: Path, server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "monitor.db"
    write_feeds(rules, server.add("/one.xml", serve(TWO)))
    with LineServer(silent) as mute, SmtpCatcher() as smtp:
        write_channels(rules, mute.port, timeout="8s")
        service = RunningService(rules, db)
        try:
            assert mute.wait_for_connections(1, WAIT)  # the digest is on its way... to a wall
            service.wait_for("delivery to desk is still running after")
            for polls in (2, 3, 4):  # the feed falls due three times and is polled each time
                poll_again(db)
                assert len(server.requests_to("/one.xml")) == polls
            assert mute.open == 1, "the polls above all happened while the send hung"

            failed = service.wait_for("to desk failed (retry at")
            assert "no answer within 8 s" in failed
            assert mute.wait_for_open(0, WAIT)  # it hung up at its timeout
            with Store(db) as store:
                [digest] = Outbox(store).recent(("retrying",))
                assert digest.last_error is not None and "no answer within 8 s" in digest.last_error
                # The retry, brought forward, goes to a server that answers this time.
                write_channels(rules, smtp.port, timeout="8s")
                service.wait_for("reloaded channels")
                Outbox(store).record_failure(digest.id, digest.last_error, datetime.now(UTC))
            service.wait_for(f"digest {digest.id} delivered to desk")
        finally:
            code = service.stop()
    assert code == 0
    [mail] = smtp.messages
    assert f"<{digest.id}" in mail.data.decode("utf-8", "replace")  # the same digest, retried
    assert mute.connections == 1
    log = "\n".join(service.seen)
    assert not any(words in log for words in SCHEDULER_WORDS), log


def test_an_immediate_alert_leaves_while_another_feed_stalls(
    rules: Path, server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "monitor.db"
    slow = "settings:\n  timeout: {connect: 10s, read: 60s, total: 60s}"
    write_feeds(rules, server.add("/stall.xml", stall()), server.add("/fast.xml", serve(TWO)),
                settings=slow)  # fmt: skip
    with SmtpCatcher() as smtp:
        write_channels(rules, smtp.port)
        started = time.monotonic()
        service = RunningService(rules, db)
        try:
            service.wait_for("delivered to desk")
            took = time.monotonic() - started
            stalled = server.wait_for_in_flight(1, 0)  # the other feed still hangs
            report = service.wait_for("poll cycle still running after")
        finally:
            assert service.stop() == 0
    assert stalled, "the stalled feed was still in flight when the alert left"
    assert took < 20, f"the alert took {took:.1f} s; the stalled feed times out at 60 s"
    assert len(smtp.messages) == 1
    assert "PLA drills near the Taiwan Strait" in smtp.messages[0].data.decode()
    assert "feeds done so far" in report
    log = "\n".join(service.seen)
    assert "poll cycle: 2 feeds" not in log  # the cycle never completed meanwhile
    assert not any(words in log for words in SCHEDULER_WORDS), log


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_login_echoed_back_is_redacted_in_stored_printed_and_logged_errors(
    rules: Path, server: FeedServer, tmp_path: Path, mechanism: str
) -> None:
    db = tmp_path / "state" / "monitor.db"
    user, password = "desk-robot", "hunter2-correct-horse"
    env = {"SMTP_USER": user, "SMTP_PASSWORD": password}
    write_feeds(rules, server.add("/one.xml", serve(TWO)))
    login = ", username_env: SMTP_USER, password_env: SMTP_PASSWORD"
    with LineServer(echoing_smtp(mechanism)) as echo:
        write_channels(rules, echo.port, login=login)
        service = RunningService(rules, db, env=env)
        try:
            service.wait_for("to desk failed (dead)")
        finally:
            assert service.stop() == 0
        heard = "\n".join(echo.lines)
    b64 = [base64.b64encode(s.encode()).decode() for s in (user, password, f"\0{user}\0{password}")]
    plain, one_by_one = b64[2], b64[1]
    assert (plain if mechanism == "PLAIN" else one_by_one) in heard  # the server got them
    base = [sys.executable, "-m", "monitor", "--rules", str(rules), "--db", str(db)]
    printed = subprocess.run(
        [*base, "status"], capture_output=True, text=True, timeout=WAIT, check=True, env=env
    ).stdout
    as_json = subprocess.run(
        [*base, "status", "--json"], capture_output=True, text=True, timeout=WAIT, check=True
    ).stdout
    [dead] = json.loads(as_json)["deliveries"]["troubled"]
    with Store(db) as store:
        stored = Outbox(store).get(dead["id"])
    assert stored is not None and stored.last_error is not None
    assert "535" in stored.last_error and "[redacted]" in stored.last_error
    for text in (stored.last_error, printed, as_json, "\n".join(service.seen)):
        for secret in (user, password, *b64):
            assert secret not in text

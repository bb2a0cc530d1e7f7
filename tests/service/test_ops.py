"""Operations: `monitor run` as a real subprocess with its /healthz and /metrics, JSON logs
without secrets, SIGHUP reloads, SIGTERM in time, one service per database.

Every service here listens on a free port (`--health-port 0`) and says which in its log; every
wait ends on a log line or a process exit, never on a sleep.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.service.lock import InstanceLock
from monitor.service.logs import REDACTED, Redactor, secret_names, secrets_named_in
from monitor.service.metrics import new_matches
from monitor.store.location import DbLocation
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, redirect, serve
from tests.support.receivers import SmtpCatcher
from tests.support.service import WAIT, RunningService

RULE = (
    "rules:\n  - id: strait\n    title: Strait\n    severity: high\n"
    "    query: '\"Taiwan Strait\"'\n"
)


class Service(RunningService):
    """The running service, plus its metrics parsed by prometheus-client's own parser."""

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed `name{label="value",...}` (labels sorted)."""
        status, text = self.get("/metrics")
        assert status == 200
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    (rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    with FeedServer() as server:
        yield server, rules, tmp_path / "state" / "monitor.db"


def write_feeds(rules: Path, *urls: str) -> None:
    lines = ["feeds:"] + [f"  - url: {u}\n    interval: 1m" for u in urls]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_channels(rules: Path, smtp: SmtpCatcher) -> None:
    (rules / "channels.yaml").write_text(
        "receivers:\n  - id: desk\n    email: {to: [desk@example.org], from: m@example.org,"
        f" smtp: {{host: 127.0.0.1, port: {smtp.port}}}}}\n"
        "routes:\n  - {id: desk-now, receiver: desk, schedule: immediate}\n",
        encoding="utf-8",
    )


# --- the running service ----------------------------------------------------------------------


def test_healthz_is_ok_then_503_with_a_reason_when_the_database_breaks(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    _server, rules, db = setup
    service = Service(rules, db)
    try:
        service.wait_for("monitor running")
        status, body = service.get("/healthz")
        assert status == 200, body
        assert json.loads(body)["status"] == "ok"

        garbage = db.with_name("garbage")
        garbage.write_bytes(b"this is not an SQLite database\n" * 200)
        garbage.replace(db)
        status, body = service.get("/healthz")
        assert status == 503
        health = json.loads(body)
        assert health["status"] == "unhealthy"
        assert health["reason"] == f"database {db} is not an SQLite database any more"
        assert service.get("/nowhere")[0] == 404
    finally:
        started = time.monotonic()
        code = service.stop()
    assert code == 0
    assert time.monotonic() - started < 10
    assert "monitor stopped" in service.seen[-1], "\n".join(service.seen)


POLLS_OK = 'monitor_polls_total{instance="ops-1",outcome="ok"}'


def test_metrics_parse_and_move_after_a_poll(setup: tuple[FeedServer, Path, Path]) -> None:
    server, rules, db = setup
    (rules / "alerts" / "asia.yaml").write_text(RULE, encoding="utf-8")
    with SmtpCatcher() as smtp:
        write_channels(rules, smtp)
        service = Service(rules, db, env={"MONITOR_INSTANCE": "ops-1"})
        try:
            service.wait_for("monitor running")
            before = service.metrics()
            assert before[POLLS_OK] == 0
            assert before['monitor_instance_info{backend="sqlite",instance="ops-1"}'] == 1
            assert before["monitor_last_successful_poll_timestamp_seconds"] == 0
            assert before["monitor_rules"] == 1

            write_feeds(rules, server.add("/one.xml", serve(TWO)), server.url("/missing.xml"))
            service.wait_for("poll cycle: 2 feeds (1 ok")
            service.wait_for("delivered to desk")
            # The send is logged as it is recorded; its counter moves a moment later.
            sent = 'monitor_digests_total{receiver="desk",result="sent"}'
            deadline = time.monotonic() + WAIT
            while sent not in (after := service.metrics()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            assert service.stop() == 0
    assert after[POLLS_OK] == 1
    assert after['monitor_polls_total{instance="ops-1",outcome="error"}'] == 1
    assert after["monitor_fetch_seconds_count"] == 2
    assert after['monitor_items_stored_total{change="new"}'] == 2
    assert after['monitor_matches_total{rule="strait",severity="high"}'] == 1
    assert after['monitor_digests_total{receiver="desk",result="sent"}'] == 1
    assert after['monitor_outbox_digests{status="pending"}'] == 0
    assert after['monitor_reloads_total{config="feeds"}'] == 1
    assert after["monitor_last_successful_poll_timestamp_seconds"] > time.time() - 600


def saved(path: Path, text: str) -> None:
    """Write `path` as editors that save atomically do. The first cycle, due at start, may
    re-read `rules/` at any moment: a file written in place was once read there half written
    (truncated: no rules at all, which is valid) on a loaded machine. The service now leaves
    a file edited within the last second for a later tick (`watched.SETTLE_NS`); this keeps
    the test about SIGHUP whatever the machine's pace."""
    draft = path.with_name(path.name + ".part")
    draft.write_text(text, encoding="utf-8")
    os.replace(draft, path)


def test_sighup_reloads_at_once_and_a_broken_rule_keeps_the_old_set(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    _server, rules, db = setup
    asia = rules / "alerts" / "asia.yaml"
    asia.write_text(RULE, encoding="utf-8")
    # A tick of an hour: only SIGHUP can make the service notice an edit within the test.
    service = Service(rules, db, tick=3600)
    try:
        service.wait_for("monitor running")
        saved(asia, RULE + "  - id: broken\n    title: Broken\n    query: '(taiwan OR'\n")
        service.proc.send_signal(signal.SIGHUP)
        error = service.wait_for("keeping the last good rules")
        assert "asia.yaml:" in error
        metrics = service.metrics()
        # The first cycle, due at start, re-reads an edited rules/ too: on a loaded machine it
        # can run after the edit and count the same broken file once more than SIGHUP does.
        assert metrics['monitor_reload_errors_total{config="rules"}'] in (1, 2)
        assert metrics["monitor_rules"] == 1  # the old set is still in force

        saved(asia, RULE + "  - id: missile\n    title: Missile\n    query: ミサイル\n")
        service.proc.send_signal(signal.SIGHUP)
        service.wait_for("reloaded rules")
        assert service.metrics()["monitor_rules"] == 2
    finally:
        assert service.stop() == 0


def test_a_second_instance_refuses_to_start_while_cli_commands_work(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    _server, rules, db = setup
    service = Service(rules, db)
    try:
        service.wait_for("monitor running")
        base = [sys.executable, "-m", "monitor", "--rules", str(rules), "--db", str(db)]
        second = subprocess.run(
            [*base, "run", "--health-port", "0"],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        status = subprocess.run(
            [*base, "status", "--json"], capture_output=True, text=True, timeout=WAIT, check=False
        )
    finally:
        assert service.stop() == 0
    assert second.returncode == 1
    expected = f"another monitor run (pid {service.proc.pid}) is using {db}; stop it first"
    assert expected in second.stderr
    assert "monitor running" not in second.stderr
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["items"] == 0


def test_json_logs_never_show_a_secret_even_when_an_error_quotes_it(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    secret = "whsec_c2VjcmV0LXRva2Vu"
    (rules / "channels.yaml").write_text(
        "receivers:\n  - id: ops\n    webhook: {url: 'https://hooks.example.org/x',"
        " secret_env: OPS_HOOK_SECRET}\n",
        encoding="utf-8",
    )
    # A publisher that sends us through a URL carrying the token and back: the fetch error
    # ("redirect loop: <url> sends back to ...") quotes the secret.
    server.add("/loop.xml", redirect(f"/via.xml?token={secret}"))
    server.add("/via.xml", redirect("/loop.xml"))
    write_feeds(rules, server.url("/loop.xml"), server.url("/missing.xml"))
    service = Service(rules, db, "--log-format", "json", env={"OPS_HOOK_SECRET": secret})
    try:
        looped = service.wait_for("redirect loop")
        service.wait_for("poll cycle: 2 feeds")
    finally:
        assert service.stop() == 0
    assert secret not in "\n".join(service.seen)
    assert f"token={REDACTED}" in looped
    records = [json.loads(line) for line in service.seen]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    record = json.loads(looped)
    assert record["level"] == "WARNING" and record["msg"].startswith(f"feed {record['feed']}: ")
    [missing] = [r for r in records if "HTTP 404" in r["msg"]]
    assert missing["level"] == "WARNING" and missing["feed"]


def test_a_feed_login_named_in_feeds_yaml_never_reaches_the_log(
    setup: tuple[FeedServer, Path, Path],
) -> None:
    server, rules, db = setup
    secret = "feed-pa55-long-enough"
    # The publisher bounces us through a URL carrying the feed's password: the fetch error
    # quotes it. The password is named only in feeds.yaml (password_env), not channels.yaml.
    server.add("/loop.xml", redirect(f"/via.xml?pw={secret}"))
    server.add("/via.xml", redirect("/loop.xml"))
    (rules / "feeds.yaml").write_text(
        f"feeds:\n  - url: {server.url('/loop.xml')}\n    interval: 1m\n"
        "    username_env: FEED_USER\n    password_env: FEED_PW\n",
        encoding="utf-8",
    )
    env = {"FEED_USER": "reader", "FEED_PW": secret}
    service = Service(rules, db, env=env)
    try:
        looped = service.wait_for("redirect loop")
    finally:
        assert service.stop() == 0
    assert secret not in "\n".join(service.seen)
    assert f"pw={REDACTED}" in looped


# --- the parts, as pure logic -------------------------------------------------------------------


def test_secret_names_are_read_from_block_and_flow_yaml() -> None:
    text = (
        "receivers:\n  - id: a\n    email: {smtp: {username_env: SMTP_USER, password_env: 'PW'}}\n"
        '  - id: b\n    webhook:\n      url: https://x\n      secret_env: "HOOK_SECRET"\n'
    )
    assert secret_names(text) == {"SMTP_USER", "PW", "HOOK_SECRET"}


def test_secrets_named_in_skips_unset_and_empty_variables(tmp_path: Path) -> None:
    channels = tmp_path / "channels.yaml"
    channels.write_text("a: {password_env: SET, secret_env: EMPTY, username_env: UNSET}\n", "utf-8")
    assert secrets_named_in(channels, {"SET": "s3cret", "EMPTY": ""}) == ["s3cret"]
    assert secrets_named_in(tmp_path / "absent.yaml", {"SET": "s3cret"}) == []


def test_the_redactor_cleans_message_arguments_and_traceback() -> None:
    redactor = Redactor(["abc", "abcdef"])
    try:
        raise ValueError("login abcdef refused")
    except ValueError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "user %s: %s", ("x", "abc!"), sys.exc_info()
        )
    assert redactor.filter(record)
    text = logging.Formatter().format(record)
    assert "abc" not in text
    assert f"user x: {REDACTED}!" in text
    assert f"ValueError: login {REDACTED} refused" in text  # the longer secret replaced whole


def test_the_lock_refuses_a_second_holder_and_frees_on_release(tmp_path: Path) -> None:
    db = DbLocation(tmp_path / "state" / "monitor.db")
    with InstanceLock(db) as first:
        assert first.path is not None and first.path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(Exception, match=rf"pid {os.getpid()}\) is using .*stop it first"):
            InstanceLock(db).acquire()
    with InstanceLock(db):  # released: a new service may start
        pass


def test_new_matches_count_growth_only() -> None:
    assert new_matches({"a": 2, "b": 5}, {"a": 3, "b": 1, "c": 4}) == {"a": 1, "c": 4}


def test_the_log_redacts_what_an_auth_line_carries(tmp_path: Path) -> None:
    from monitor.service.logs import REDACTOR, watch_secrets

    channels = tmp_path / "channels.yaml"
    channels.write_text("a: {smtp: {username_env: BOT_USER, password_env: BOT_PW}}\n", "utf-8")
    watch_secrets(channels, {"BOT_USER": "robot-sender", "BOT_PW": "pa55-w0rd-long"})
    plain = base64.b64encode(b"\0robot-sender\0pa55-w0rd-long").decode()
    alone = base64.b64encode(b"pa55-w0rd-long").decode()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "535 %s / %s", (plain, alone), None)
    assert REDACTOR.filter(record)
    assert record.getMessage() == f"535 {REDACTED} / {REDACTED}"

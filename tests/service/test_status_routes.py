"""`monitor status` shows when each route sends next: a cron route's next fire time in its own
time zone, an immediate route "after each poll"; a broken channels file does not break the
rest of the status."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from monitor.cli.main import main

CHANNELS = """\
receivers:
  - id: analysts
    email: {to: [desk@example.org], from: m@example.org, smtp: {host: 127.0.0.1, port: 2525}}
routes:
  - {id: tokyo-morning, receiver: analysts, schedule: "30 7 * * *", timezone: Asia/Tokyo}
  - {id: desk-now, receiver: analysts, schedule: immediate}
"""


def next_morning_in_tokyo() -> str:
    """07:30 in Tokyo, next: computed here by hand, not by the scheduler under test."""
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    when = now.replace(hour=7, minute=30, second=0, microsecond=0)
    if when <= now:
        when += timedelta(days=1)
    return when.isoformat(timespec="minutes")


def status(tmp_path: Path, *options: str) -> str:
    rules = tmp_path / "rules"
    args = ["--rules", str(rules), "--db", str(tmp_path / "monitor.db"), "status", *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_each_routes_next_send(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    (rules / "channels.yaml").write_text(CHANNELS, encoding="utf-8")
    expected = next_morning_in_tokyo()

    text = status(tmp_path)
    assert f"tokyo-morning to analysts: next send {expected} Asia/Tokyo" in text
    assert expected.endswith("+09:00")
    assert "desk-now to analysts: next send after each poll" in text

    doc = json.loads(status(tmp_path, "--json"))
    assert doc["routes"] == [
        {"id": "tokyo-morning", "receiver": "analysts", "schedule": "30 7 * * *",
         "timezone": "Asia/Tokyo", "next_send": expected},
        {"id": "desk-now", "receiver": "analysts", "schedule": "immediate",
         "timezone": "UTC", "next_send": "after each poll"},
    ]  # fmt: skip


def test_a_broken_channels_file_is_named_and_the_rest_still_shows(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    (rules / "channels.yaml").write_text("routes:\n  - {id: x, receiver: nobody}\n", "utf-8")
    text = status(tmp_path)
    assert "0 feeds" in text and "digests:" in text
    [line] = [line for line in text.splitlines() if line.startswith("routes:")]
    assert line.startswith("routes: cannot read them: ") and "channels.yaml:2" in line


def test_no_channels_file_says_how_to_add_routes(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    assert "routes: none (add receivers and routes to rules/channels.yaml)" in status(tmp_path)

"""`monitor demo` as a user meets it: run as a real process from a directory without `rules/`,
it matches with the rule pack installed with monitor, prints its own summary (no SMTP protocol
chatter), shows errors whole, and says which outlet is broken on purpose."""

from __future__ import annotations

import email
import email.policy
import filecmp
import json
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from monitor.demo.demo import DEMO_WEEK_START, copy_rules, demo_settings, load_outlets
from monitor.demo.receivers import SMTP_LOGGER, DemoSmtp
from monitor.ingest.feedstate import history_before
from monitor.models import FeedState
from tests.demo.test_demo_data import WINDOW

ROOT = Path(__file__).resolve().parents[2]
PACK = resources.files("monitor") / "data" / "rules" / "alerts"
# What aiosmtpd writes on `mail.log` for each connection and command.
SMTP_CHATTER = ("Peer:", "handling connection", "EOF received", ">> b'", "Connection lost")


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One `monitor demo`, in an empty directory: no rules/ beside it."""
    home = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--dir", "out"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, home


def test_the_demo_works_from_a_directory_without_rules(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, home = demo_run
    assert done.returncode == 0, done.stderr
    assert not (home / "rules").exists()
    first = done.stdout.splitlines()[0]
    assert first.startswith("14 alert rules from 6 files in the default rule pack installed")
    counts = [line.split() for line in done.stdout.splitlines() if line.endswith("]")]
    assert sum(int(n) for n, *_ in counts) > 50  # the rules matched: not "0 matches"
    assert (home / "out" / "demo" / "digest-1.eml").is_file()
    assert "webhook-1.json (signature verified)" in done.stdout


def test_the_demo_prints_no_smtp_chatter(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _home = demo_run
    output = done.stdout + done.stderr
    assert [c for c in SMTP_CHATTER if c in output] == []
    assert "digests delivered to the local SMTP server" in done.stdout  # mail did go


def test_the_demo_names_a_story_surge_and_a_volume_surge_and_mails_them(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, home = demo_run
    lines = done.stdout.splitlines()
    [head] = [line for line in lines if line.startswith("surges: ")]
    story, volume = (int(n) for n in head.split()[1:4:2])
    assert story > 0 and volume > 0, head
    assert any(line.startswith("  story surge story:") and " outlets " in line for line in lines)
    assert any(line.startswith("  volume surge ") and "in the last hour" in line for line in lines)
    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
        for p in sorted((home / "out" / "demo").glob("digest-*.eml"))
    ]
    assert any(s.startswith("Surge (story): ") for s in subjects), subjects
    assert any(s.startswith("Surge (volume): ") for s in subjects), subjects


def test_errors_are_whole_and_the_broken_outlet_says_it_is_on_purpose(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _home = demo_run
    [line] = [line for line in done.stdout.splitlines() if "! manila-courier" in line]
    assert "(broken on purpose: it serves an HTML maintenance page" in line
    assert line.endswith('(look for a <link rel="alternate"> feed URL on that page)'), line
    assert "…" not in done.stdout


def test_the_installed_rule_pack_is_the_projects(tmp_path: Path) -> None:
    shipped = sorted(f.name for f in PACK.iterdir() if f.name.endswith(".yaml"))
    project = sorted(p.name for p in (ROOT / "rules" / "alerts").glob("*.yaml"))
    assert shipped == project
    _match, mismatch, errors = filecmp.cmpfiles(
        ROOT / "rules" / "alerts", Path(str(PACK)), project, shallow=False
    )
    assert (mismatch, errors) == ([], []), (
        "monitor/data/rules/alerts/ differs from rules/alerts/: "
        "cp rules/alerts/*.yaml monitor/data/rules/alerts/"
    )


def test_the_users_rules_win_over_the_installed_pack(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "alerts").mkdir(parents=True)
    (mine / "alerts" / "one.yaml").write_text("rules: []\n", encoding="utf-8")
    assert copy_rules(mine, tmp_path / "a") == (1, str(mine / "alerts"))
    count, origin = copy_rules(tmp_path / "none", tmp_path / "b")
    assert count == 6 and origin.startswith("the default rule pack installed with monitor")
    assert sorted(p.name for p in (tmp_path / "b" / "alerts").iterdir())[0] == "diplomacy.yaml"


@pytest.mark.parametrize("now", [datetime.now(UTC), datetime(2031, 6, 1, tzinfo=UTC)])
def test_every_sample_item_counts_as_fresh_whenever_the_demo_runs(now: datetime) -> None:
    # A real first poll keeps what was published an hour before it as history: the demo's
    # week, long past, would send nothing. Its settings keep the week fresh, now or years on.
    assert WINDOW[0] >= DEMO_WEEK_START
    state = FeedState(feed_id="x", url="http://x/", first_polled=now)
    assert history_before(state, demo_settings(now), now) < DEMO_WEEK_START


def test_the_demo_smtp_server_restores_the_log_level() -> None:
    logger = logging.getLogger(SMTP_LOGGER)
    before = logger.level
    with DemoSmtp():
        assert logger.level == logging.WARNING
    assert logger.level == before


def test_only_the_broken_outlet_has_a_reason() -> None:
    assert {o.id: o.broken for o in load_outlets() if o.broken} == {
        "manila-courier": "it serves an HTML maintenance page where its feed should be"
    }


def test_the_demo_tells_its_reports_as_fewer_stories_one_told_in_several_languages(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _home = demo_run
    lines = done.stdout.splitlines()
    [head] = [line for line in lines if line.startswith("stories: ")]
    found = re.match(r"stories: (\d+) reports in (\d+) stories, (\d+) told in more", head)
    assert found, head
    reports, stories, several = (int(n) for n in found.groups())
    assert 0 < stories < reports and several > 0
    [widest] = [line for line in lines if line.startswith("  widest: story ")]
    told = re.search(r"\((\d+) outlets in ([^)]+)\)$", widest)
    assert told, widest
    assert int(told.group(1)) >= 3 and len(told.group(2).split(", ")) >= 2


# Developments of the sample week, each told by outlets in several languages within hours,
# by the titles of their reports: one entry each for the analyst, not one per language.
ONE_STORY = {
    # The carrier, the air force, Okinawa, and the fighters (J-15 in English, J15 in Japanese).
    "radar": (
        "Japan protests after Chinese fighters lock radar on its jets near Okinawa",
        "中国軍機が空自機にレーダー照射 政府が抗議",
        "中 전투기, 日 자위대기에 레이더 조준…일본 강력 항의",
    ),
}


@pytest.mark.parametrize("development", sorted(ONE_STORY))
def test_a_development_told_in_several_languages_is_one_story(
    demo_run: tuple[subprocess.CompletedProcess[str], Path], development: str
) -> None:
    done, home = demo_run
    assert done.returncode == 0, done.stderr
    out = home / "out"
    where = ["--rules", str(out / "demo" / "rules"), "--db", str(out / "demo.db")]
    query = ["--since", "3650d", "--limit", "500", "--json"]
    listed = subprocess.run(
        [sys.executable, "-m", "monitor", *where, "items", "search", *query],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    story = {item["title"]: item["story"] for item in map(json.loads, listed.stdout.splitlines())}
    titles = ONE_STORY[development]
    assert all(title in story for title in titles), sorted(story)
    assert len({story[title] for title in titles}) == 1, {t: story[t] for t in titles}

"""Every command that reads or writes the database, on PostgreSQL (`--db postgresql://...`):
the same feed server, rules and commands as on a SQLite file, and the same answers.

The world is the stories tests' one (tests/cli/test_stories.py): one North Korean launch told
by three outlets in English and Japanese, and a look-alike, matched by the default Korea rules;
an immediate email route to a real SMTP server. `monitor run` and `monitor web` run as real
subprocesses; /healthz is asked of a service whose PostgreSQL server is stopped under it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.service.lock import InstanceLock
from monitor.service.logs import REDACTED, REDACTOR
from monitor.store import Store
from monitor.store.location import DbLocation, redacted, url_secrets
from tests.cli.test_stories import REPORTS, rss
from tests.support.feedserver import FeedServer, serve
from tests.support.pgcluster import server_url, start_cluster
from tests.support.receivers import SmtpCatcher
from tests.support.service import WAIT, RunningService, monitor_once

ROOT = Path(__file__).resolve().parents[2]
FEEDS = {"wire": ["wire-1"], "courier": ["courier-1", "courier-2"], "tokyo": ["nhk-1"]}
CHANNELS = """\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: m@example.org, smtp: {{host: 127.0.0.1, port: {port}}}}}
routes:
  - {{id: desk-now, receiver: desk, schedule: immediate}}
"""


@dataclass
class World:
    server: FeedServer
    smtp: SmtpCatcher
    rules: Path
    db: str | Path  # a PostgreSQL URL or a SQLite file

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        argv = ["--rules", str(self.rules), "--db", str(self.db), *args]
        return CliRunner().invoke(main, argv, env=env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def lines(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok(*args).splitlines()]

    def item_id(self, guid: str) -> int:
        [found] = [d["id"] for d in self.lines("items", "search", "--json") if d["guid"] == guid]
        return int(found)


def make_world(tmp: Path, server: FeedServer, smtp: SmtpCatcher, db: str | Path) -> World:
    rules = tmp / "rules"
    (rules / "alerts").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "alerts" / "japan-korea.yaml", rules / "alerts")
    lines = ["feeds:"]
    for feed, guids in FEEDS.items():
        url = server.add(f"/{feed}.xml", serve(rss(feed, guids)))
        lines.append(f"  - url: {url}\n    id: {feed}")
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (rules / "channels.yaml").write_text(CHANNELS.format(port=smtp.port), encoding="utf-8")
    return World(server, smtp, rules, db)


@pytest.fixture
def servers() -> Iterator[tuple[FeedServer, SmtpCatcher]]:
    with FeedServer() as server, SmtpCatcher() as smtp:
        yield server, smtp


@pytest.fixture
def pg(tmp_path: Path, pg_url: str, servers: tuple[FeedServer, SmtpCatcher]) -> World:
    return make_world(tmp_path / "pg", *servers, pg_url)


@pytest.fixture
def lite(tmp_path: Path, servers: tuple[FeedServer, SmtpCatcher]) -> World:
    return make_world(tmp_path / "lite", *servers, tmp_path / "lite" / "state" / "monitor.db")


# --- the option ------------------------------------------------------------------------------


def test_a_url_selects_postgresql_and_a_path_keeps_sqlite(pg: World, tmp_path: Path) -> None:
    pg.ok("poll")
    with Store(pg.db) as store:
        assert store.backend == "postgresql" and store.count_items() == len(REPORTS)
    # MONITOR_DB, and the `postgres://` spelling, reach the same database.
    other = str(pg.db).replace("postgresql://", "postgres://", 1)
    shown = CliRunner().invoke(
        main, ["--rules", str(pg.rules), "status", "--json"], env={"MONITOR_DB": other}
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["items"] == len(REPORTS)
    assert not (tmp_path / "pg" / "state").exists()  # no SQLite file was made on the side
    # A path keeps SQLite, even one that looks a little like a URL.
    odd = tmp_path / "postgresql:" / "monitor.db"
    lite = CliRunner().invoke(main, ["--rules", str(pg.rules), "--db", str(odd), "status"])
    assert lite.exit_code == 0, lite.output
    assert odd.is_file()


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("mysql://u@h/db", "mysql:// is not a database monitor speaks"),
        ("", "give a SQLite file path or a postgresql:// URL"),
        ("postgresql://u:s3cr3t@h/db?bogus=1", 'URL: invalid URI query parameter: "bogus"; write'),
        ("postgresql://u:s3cr3t@h:5 432/db", "URL: unexpected spaces found in"),
        ("postgresql://u:s3cr3t@[::1/db", "not a PostgreSQL URL: "),
    ],
)
def test_a_db_that_is_neither_is_one_usage_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--db", given, "status"])
    assert result.exit_code == 2 and said in result.output
    assert "s3cr3t" not in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # not taken for a file: no `mysql:` folder made here
    folder = CliRunner().invoke(main, ["--db", str(tmp_path), "status"])
    assert folder.exit_code == 2 and "is a folder: give the database file" in folder.output


def test_a_db_from_dotenv_is_read_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / ".env").write_text("MONITOR_DB=mysql://u@h/db\n", encoding="utf-8")
    done = monitor_once("run", cwd=tmp_path)
    assert done.returncode == 1
    assert "monitor: .env: MONITOR_DB: Invalid value for '--db': mysql:// is not" in done.stderr


def test_a_password_in_the_url_is_never_shown(pg: World, tmp_path: Path) -> None:
    # The test server trusts every local connection, so a password is accepted and unused.
    url = str(pg.db).replace("://monitor@", "://monitor:pa55-w0rd@", 1)
    location = DbLocation.parse(url)
    assert location.is_postgres and location.target == url
    assert "pa55-w0rd" not in f"{location} {location!r}"
    assert redacted(url + "?password=pa55-w0rd&sslmode=disable").endswith(
        "?password=***&sslmode=disable"
    )
    missing = CliRunner().invoke(
        main, ["--rules", str(pg.rules), "--db", url, "items", "show", "999"]
    )
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        f"monitor: no item with id 999 in {redacted(url)} "
        "(find item ids with `monitor items search`)"
    )
    # Should a driver's message ever quote it, the log redacts it (also as libpq decodes it).
    assert REDACTOR.redact("refused pa55-w0rd") == f"refused {REDACTED}"
    CliRunner().invoke(main, ["--db", str(pg.db), "status"], env={"PGPASSWORD": "pgpa55"})
    assert REDACTOR.redact("refused pgpa55") == f"refused {REDACTED}"
    assert url_secrets("postgresql://u:p%40ss@h/db") == ["p%40ss", "p@ss"]
    # A server nobody answers: the error names the URL, without the password.
    dead = "postgresql://monitor:pa55-w0rd@127.0.0.1:1/nothing"
    down = CliRunner().invoke(main, ["--rules", str(pg.rules), "--db", dead, "status"])
    assert down.exit_code == 1 and "pa55-w0rd" not in down.output
    assert "postgresql://monitor:***@127.0.0.1:1/nothing" in down.stderr


# --- the commands ----------------------------------------------------------------------------


def test_feed_commands_work_on_postgresql(pg: World, tmp_path: Path) -> None:
    pg.ok("poll")
    listed = pg.lines("feeds", "list", "--json")
    assert {f["id"]: f["health"] for f in listed} == dict.fromkeys(FEEDS, "ok")
    checked = pg.lines("feeds", "check", "--json")
    assert {f["id"]: f["status"] for f in checked} == dict.fromkeys(FEEDS, "ok")
    extra = pg.server.add("/extra.xml", serve(rss("wire", ["wire-1"])))
    assert "added extra" in pg.ok("feeds", "add", extra, "--id", "extra")
    opml = tmp_path / "more.opml"
    more = pg.server.add("/more.xml", serve(rss("tokyo", ["nhk-1"])))
    opml.write_text(
        f'<opml version="2.0" xmlns:monitor="urn:x-monitor:opml"><body>'
        f'<outline type="rss" text="More" xmlUrl="{more}" monitor:id="more"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    assert "imported 1 feeds" in pg.ok("feeds", "import", str(opml))
    pg.ok("poll", "--feed", "extra")
    with Store(pg.db) as store:
        assert "extra" in store.states()
    assert pg.ok("feeds", "remove", "extra").startswith("removed extra: ")
    with Store(pg.db) as store:
        assert "extra" not in store.states()  # its health went with it; its items stay
    assert {f["id"] for f in pg.lines("feeds", "list", "--json")} == {*FEEDS, "more"}


def comparable(world: World) -> dict[str, Any]:
    """What the read commands say, without what differs by nature (ids, times, the URL)."""
    world.ok("poll")
    status = json.loads(world.ok("status", "--json"))
    searched = world.lines("items", "search", "--json")
    stories = world.lines("stories", "--json")
    biggest = max(stories, key=lambda s: s["reports"])
    shown = json.loads(world.ok("stories", "show", str(biggest["id"]), "--json"))
    item = json.loads(world.ok("items", "show", str(world.item_id("nhk-1")), "--json"))
    return {
        "status": (
            status["items"],
            status["matches"],
            status["history"],
            sorted((f["id"], f["health"], f["consecutive_errors"]) for f in status["feeds"]),
        ),
        "search": sorted(d["guid"] for d in searched),
        "cjk": [d["guid"] for d in world.lines("items", "search", "弾道ミサイル", "--json")],
        "phrase": sorted(
            d["guid"] for d in world.lines("items", "search", '"cruise missiles"', "--json")
        ),
        "rules": sorted(
            (d["guid"], m["rule"], m["score"])
            for d in world.lines("rules", "test", "--since", "1d", "--json")
            for m in d["matches"]
        ),
        "stories": sorted((s["reports"], sorted(s["outlets"]), s["regions"]) for s in stories),
        "members": sorted(m["title"] for m in shown["members"]),
        "item": (item["title"], sorted(m["rule"] for m in item["matches"]), item["regions"]),
        "preview": world.ok("digest", "preview").count(REPORTS["nhk-1"][2]),
    }


def test_read_commands_agree_with_sqlite(pg: World, lite: World) -> None:
    on_pg, on_lite = comparable(pg), comparable(lite)
    assert on_pg == on_lite
    assert on_pg["search"] == sorted(REPORTS) and on_pg["cjk"] == ["nhk-1"]
    assert on_pg["phrase"] == ["courier-2"] and on_pg["preview"] == 1
    text = pg.ok("status")
    assert f"{len(FEEDS)} feeds" in text and "routes:" in text


def test_split_and_merge_on_postgresql(pg: World) -> None:
    pg.ok("poll")
    story = {d["guid"]: d["story"] for d in pg.lines("items", "search", "--json")}
    main_story, look_alike = story["wire-1"], story["courier-2"]
    merged = pg.ok("stories", "merge", str(main_story), str(look_alike))
    assert f"story {look_alike} merged into story {main_story}: 1 report moved" in merged
    courier = pg.item_id("courier-1")
    split = pg.ok("stories", "split", str(courier))
    after = {d["guid"]: d["story"] for d in pg.lines("items", "search", "--json")}
    assert f"item {courier} left story {main_story}: it is story {after['courier-1']}" in split
    assert after["courier-2"] == main_story != after["courier-1"]
    gone = json.loads(pg.ok("stories", "show", str(look_alike), "--json"))
    assert gone == {"id": look_alike, "merged_into": main_story}
    # A story the linker makes later never takes an id a split already holds.
    late = pg.server.add("/late.xml", serve(LATE))
    feeds = pg.rules / "feeds.yaml"
    feeds.write_text(feeds.read_text() + f"  - url: {late}\n    id: late\n", encoding="utf-8")
    pg.ok("poll", "--feed", "late")
    final = {d["guid"]: d["story"] for d in pg.lines("items", "search", "--json")}
    assert final["late-1"] not in after.values()
    assert {g: final[g] for g in after} == after


LATE = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>late</title>'
    b"<item><guid>late-1</guid><title>Typhoon closes ports in Okinawa</title>"
    b"<link>https://late.example.org/1</link></item></channel></rss>"
)


def test_no_instance_lock_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Beside the two services of the `monitor run` test below: no refusal, and no file (a
    # URL taken for a path would leave `postgresql:/...lock` in the working directory).
    monkeypatch.chdir(tmp_path)
    with InstanceLock(DbLocation.parse(pg_url)) as first, InstanceLock(DbLocation.parse(pg_url)):
        assert first.path is None
    assert list(tmp_path.iterdir()) == []


def test_digest_commands_on_postgresql(pg: World) -> None:
    pg.ok("poll")
    assert "desk-now" in pg.ok("digest", "preview")
    pg.smtp.fail_next("550 5.7.1 relaying denied", stage="RCPT")
    failed = pg.run("digest", "send")
    assert pg.smtp.messages == [], failed.output
    [digest] = json.loads(pg.ok("status", "--json"))["deliveries"]["troubled"]
    assert digest["status"] == "dead"
    shown = pg.ok("digest", "show", str(digest["id"]))
    assert REPORTS["nhk-1"][2] in shown
    assert f"digest {digest['id']} delivered to desk" in pg.ok("digest", "retry", digest["id"])
    [mail] = pg.smtp.messages
    with Store(pg.db) as store:
        raw = store._rows("SELECT body FROM digests WHERE id = ?", (digest["id"],))[0]["body"]
    assert bytes(raw).replace(b"\r\n", b"\n") in mail.data.replace(b"\r\n", b"\n")
    item = json.loads(pg.ok("items", "show", str(pg.item_id("nhk-1")), "--json"))
    assert [d["status"] for d in item["digests"]] == ["delivered"]
    assert "route desk-now: nothing pending" in pg.ok("digest", "send")  # each item goes once
    assert len(pg.smtp.messages) == 1


# --- the console and the service, as processes ----------------------------------------------


def web_process(world: World) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "monitor", "--rules", str(world.rules), "--db", str(world.db)]
    proc = subprocess.Popen(
        [*argv, "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "console on http://127.0.0.1:PORT/; Ctrl-C stops it"
    assert first.startswith("console on "), first + proc.stderr.read()  # type: ignore[union-attr]
    return proc, first.split()[2].rstrip(";").rstrip("/")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        text: str = response.read().decode()
        return text


def test_web_serves_pages_from_postgresql(pg: World) -> None:
    pg.ok("poll")
    pg.ok("digest", "send")
    searched = {d["guid"]: d for d in pg.lines("items", "search", "--json")}
    nhk = searched["nhk-1"]
    proc, url = web_process(pg)
    try:
        assert REPORTS["wire-1"][2] in fetch(url + "/?since=all")
        assert REPORTS["nhk-1"][2] in fetch(url + f"/stories/{nhk['story']}")
        found = fetch(url + "/search?q=%22cruise+missiles%22")  # hits are marked: links tell
        assert "/courier-2" in found and "/wire-1" not in found
        assert "https://tokyo.example.org/nhk-1" in fetch(url + f"/items/{nhk['id']}")
        assert "desk-now" in fetch(url + "/deliveries")
        assert "tokyo" in fetch(url + "/feeds") and "korea-missiles" in fetch(url + "/rules")
    finally:
        proc.terminate()
        assert proc.wait(timeout=WAIT) == 0
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def age_item(url: str, guid: str) -> None:
    """Make one item look first seen long ago, so the service's retention removes it."""
    with Store(url) as store, store._write() as conn:
        conn.execute(
            "UPDATE items SET first_seen = ? WHERE guid = ?", ("2000-01-01T00:00:00Z", guid)
        )


def test_monitor_run_polls_delivers_and_answers_healthz(pg: World) -> None:
    pg.ok("poll", "--feed", "wire")
    age_item(str(pg.db), "wire-1")
    service = RunningService(pg.rules, pg.db)
    second = RunningService(pg.rules, pg.db)  # on PostgreSQL, several: no instance lock
    try:
        service.wait_for("retention: removed 1 items")
        code, body = service.get("/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok", body
        assert second.get("/healthz")[0] == 200
        wait_until(lambda: len(pg.smtp.messages) >= 1)  # the immediate route's digest
    finally:
        assert service.stop() == 0 and second.stop() == 0
    with Store(pg.db) as store:
        guids = {s.item.guid for s in store.search(None, limit=100)}
    assert "wire-1" not in guids and "nhk-1" in guids  # pruned; the rest polled
    mail = message_from_bytes(pg.smtp.messages[0].data, policy=policy.default)
    assert mail["To"] == "desk@example.org" and mail["Subject"].startswith("[monitor] ")
    assert not list(pg.rules.parent.rglob("*.lock"))  # no lock file: there is no file


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_healthz_says_the_database_is_unreachable_when_the_server_stops(
    tmp_path: Path, servers: tuple[FeedServer, SmtpCatcher]
) -> None:
    cluster = start_cluster()  # a server of this test's own, to stop under the service
    running = True
    try:
        url = server_url(cluster.dsn, "healthz").replace("://monitor@", "://monitor:h1dden@", 1)
        world = make_world(tmp_path, *servers, url)
        service = RunningService(world.rules, url)
        try:
            service.wait_for("poll cycle: ")
            assert service.get("/healthz")[0] == 200
            cluster.stop()
            running = False
            code, body = service.get("/healthz")
            service.wait_for("error connecting")  # the service's own pool noticed too
        finally:
            # Killed, not stopped: with its server gone, the service's own reads wait out
            # their connect timeout before a SIGTERM is even seen (not what this test is about).
            service.proc.kill()
            service.proc.wait(timeout=WAIT)
            logged = drained(service)
    finally:
        if running:
            cluster.stop()
    doc = json.loads(body)
    assert code == 503 and doc["status"] == "unhealthy", body
    assert doc["reason"].startswith(f"database {redacted(url)} is unreachable: "), doc
    assert "h1dden" not in body
    assert any(f"database {redacted(url)}" in line for line in logged)  # "monitor running"
    assert not any("h1dden" in line for line in logged)


def drained(service: RunningService) -> list[str]:
    """Every line a killed service logged."""
    service._reader.join(timeout=WAIT)  # its pipe ends with the process
    assert service.proc.stderr is not None
    service.proc.stderr.close()
    while not service.lines.empty():
        service.seen.append(service.lines.get())
    return service.seen

"""Surges end to end: `monitor run` as a real subprocess polls real feed servers, a story told by
three outlets in two languages and a burst of one rule's matches each send one alert (a signed
webhook, an email) to the routes that take them, and neither is sent again within its
cooldown when more reports come. /metrics counts them, the log and `monitor status` say why.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.store import Store
from monitor.store.surges import Surges
from tests.digest.world import ENV, SECRET
from tests.ingest.test_poll import rss as rss_any
from tests.support.feedserver import FeedServer, serve
from tests.support.receivers import SmtpCatcher, WebhookCatcher
from tests.support.service import WAIT, RunningService

RULES = """\
rules:
  - id: strait
    title: Drills in the Taiwan Strait
    severity: high
    query: '"Taiwan Strait" OR 台湾海峡'
  - id: launches
    title: Launches
    severity: medium
    query: 'launch*'
"""
STORY = {
    "wire": ("w1", "PLA starts live-fire drills in the Taiwan Strait after Lai speech"),
    "post": ("p1", "Live-fire drills begin in the Taiwan Strait, PLA Eastern Theater says"),
    "asahi": ("j1", "中国軍、台湾海峡で実弾演習を開始 頼氏演説に反発"),
}
LAUNCHES = [(f"l{n}", f"Rocket launch number {n} reported by the space agency") for n in range(5)]


def rss(*entries: tuple[str, str], lang: str = "en") -> bytes:
    """The test feed of the poll tests, saying its language (a story surge counts them)."""
    return rss_any(*entries).replace(
        b"<title>Test</title>", f"<title>{lang}</title><language>{lang}</language>".encode()
    )


def channels(smtp_port: int, hook_url: str) -> str:
    return f"""\
surge:
  story: {{outlets: 3, languages: 2, window: 2h, cooldown: 6h}}
  volume: {{factor: 3, min: 5, cooldown: 6h}}
receivers:
  - id: desk
    email:
      to: [desk@example.org]
      from: m@example.org
      smtp: {{host: 127.0.0.1, port: {smtp_port}}}
  - id: ops
    webhook: {{url: "{hook_url}", secret_env: HOOK_SECRET}}
routes:
  - {{id: desk-volume, receiver: desk, match: {{surge: [volume], rules: [launches]}}}}
  - {{id: ops-stories, receiver: ops, match: {{surge: [story]}}}}
"""


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def poll_all_again(db: Path, first_polled: datetime | None = None) -> None:
    """Make every feed due now (and, if given, first polled then) and wait until the service
    has polled each once more."""
    with Store(db) as store:
        before = store.states()
        for state in before.values():
            first = first_polled or state.first_polled
            store.save_state(
                dataclasses.replace(state, next_due=datetime.now(UTC), first_polled=first)
            )

    def polled() -> bool:
        with Store(db) as store:
            now = store.states()
        return all(now[f].last_attempt != s.last_attempt for f, s in before.items())

    eventually(polled, "the service polled every feed again")


def test_story_and_volume_surges_are_each_delivered_once(tmp_path: Path) -> None:
    rules, db = tmp_path / "rules", tmp_path / "state" / "monitor.db"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "pack.yaml").write_text(RULES, encoding="utf-8")
    with (
        FeedServer() as server,
        SmtpCatcher() as smtp,
        WebhookCatcher(secret=SECRET) as hook,
    ):
        urls = [server.add(f"/{f}.xml", serve(rss(STORY[f]))) for f in ("wire", "post")]
        urls.append(server.add("/asahi.xml", serve(rss(STORY["asahi"], lang="ja"))))
        urls.append(server.add("/agency.xml", serve(rss(("x", "Weather: sunny")))))
        feeds = "feeds:\n" + "".join(f"  - {{url: {u}, interval: 1h}}\n" for u in urls)
        (rules / "feeds.yaml").write_text(feeds, encoding="utf-8")
        (rules / "channels.yaml").write_text(channels(smtp.port, hook.url), encoding="utf-8")
        service = RunningService(rules, db, env=ENV)
        try:
            # The first poll: three outlets in two languages tell one story.
            story = service.wait_for(": story story:")
            eventually(lambda: len(hook.requests) == 1, "the story surge's webhook came")
            # Two days on (as if), the agency reports five launches in an hour.
            server.add("/agency.xml", serve(rss(*LAUNCHES)))
            poll_all_again(db, first_polled=datetime.now(UTC) - timedelta(days=2))
            volume = service.wait_for(": volume rule:launches:")
            eventually(lambda: len(smtp.messages) == 1, "the volume surge's email came")
            # More of both: another report, a sixth launch. Within the cooldown: no new alert.
            more = rss(STORY["post"], ("p2", "Taiwan Strait drills, day two"))
            server.add("/post.xml", serve(more))
            server.add("/agency.xml", serve(rss(*LAUNCHES, ("l9", "Another launch"))))
            poll_all_again(db)
            poll_all_again(db)  # the cycle after the one that stored them: detection is done
            _, metrics = service.get("/metrics")
        finally:
            assert service.stop() == 0
        mails, hooks = list(smtp.messages), list(hook.requests)
    assert volume.endswith("5 matches in the last hour, none in the 48 hours before")
    assert story.endswith(": 3 outlets in 2 languages within 0 min")
    assert len(mails) == 1 and len(hooks) == 1
    assert b"Surge (volume): Launches (launches)" in mails[0].data.replace(b"\r\n ", b" ")
    body = json.loads(hooks[0].body)
    assert hooks[0].verified is True
    assert body["surge"]["kind"] == "story"
    assert body["surge"]["why"].startswith("3 outlets in 2 languages within")
    assert 'monitor_surges_total{kind="volume"} 1.0' in metrics
    assert 'monitor_surges_total{kind="story"} 1.0' in metrics
    with Store(db) as store:
        assert Surges(store).counts() == {"story": 1, "volume": 1}
    status = subprocess.run(
        [sys.executable, "-m", "monitor", "--rules", str(rules), "--db", str(db), "status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "surges: 1 story, 1 volume" in status
    assert "volume rule:launches: 5 matches in the last hour" in status

"""Story-first digests end to end: `monitor run` as a real subprocess polling four outlets on a
loopback feed server, with a real SMTP server and a real webhook receiver.
Expected: one event told by three outlets in two languages arrives as ONE entry, "reported by
3 outlets in en, ja", by mail and by webhook; when a later poll brings a Korean report of it,
the route with `updates: true` gets a marked update naming the new outlet and language, and
the route without it gets nothing more (the report is covered, not pending)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from html import escape
from pathlib import Path

from monitor.store import Store
from tests.digest.world import SECRET
from tests.support.feedserver import FeedServer, serve
from tests.support.receivers import SmtpCatcher, WebhookCatcher
from tests.support.service import WAIT, RunningService

RULE = """\
rules:
  - id: strait-drills
    title: Drills around Taiwan
    severity: high
    query: '(Taiwan OR 台湾 OR 대만) AND (drill* OR 演習 OR 훈련)'
"""
# One development, as four outlets told it (written for this test).
REPORTS = {
    "wire": ("en", "China's Eastern Theater Command launches drills around Taiwan",
             "The PLA Eastern Theater Command began joint drills around Taiwan on Monday, "
             "with warships and aircraft encircling the island."),
    "toto": ("ja", "中国軍東部戦区、台湾周辺で統合演習を開始",
             "中国人民解放軍の東部戦区は、台湾周辺で艦艇や航空機による統合演習を始めた。"),
    "ledger": ("en", "PLA drills around Taiwan rattle regional markets",
               "Asian markets fell after China's Eastern Theater Command began drills around "
               "Taiwan with warships and aircraft."),
    "hanbando": ("ko", "중국군 동부전구, 대만 주변서 합동 훈련 개시",
                 "중국 인민해방군 동부전구가 대만 주변에서 함정과 항공기를 동원한 합동 훈련을 "
                 "시작했다."),
}  # fmt: skip
TITLES = {"wire": "Asia Wire", "toto": "Toto Shimpo", "ledger": "Pacific Ledger",
          "hanbando": "Hanbando Ilbo"}  # fmt: skip


def rss(feed: str, published: datetime, *, empty: bool = False) -> bytes:
    lang, title, summary = REPORTS[feed]
    item = (
        f"<item><guid>{feed}-1</guid><title>{escape(title)}</title>"
        f"<link>https://{feed}.example.org/1</link><description>{escape(summary)}</description>"
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate></item>"
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{TITLES[feed]}</title><link>https://{feed}.example.org/</link>"
        f"<language>{lang}</language>{'' if empty else item}</channel></rss>"
    ).encode()


def write_rules(folder: Path, server: FeedServer, smtp: int, hook: str) -> None:
    (folder / "alerts").mkdir(parents=True)
    (folder / "alerts" / "drills.yaml").write_text(RULE, encoding="utf-8")
    feeds = [
        f"  - {{url: '{server.url(f'/{feed}.xml')}', id: {feed}, title: {title}, interval: 1h}}"
        for feed, title in TITLES.items()
    ]
    (folder / "feeds.yaml").write_text("feeds:\n" + "\n".join(feeds) + "\n", encoding="utf-8")
    (folder / "channels.yaml").write_text(
        f"""\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: m@example.org,
            smtp: {{host: 127.0.0.1, port: {smtp}}}}}
  - id: ops
    webhook: {{url: "{hook}", secret_env: HOOK_SECRET}}
routes:
  - {{id: desk-now, receiver: desk, updates: true, languages: [en, ja]}}
  - {{id: ops-now, receiver: ops}}
""",
        encoding="utf-8",
    )


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def poll_now(db: Path | str, feed: str) -> None:
    """Make one feed due now, as if its interval had passed."""
    with Store(db) as store:
        state = store.get_state(feed)
        assert state is not None
        store.save_state(dataclasses.replace(state, next_due=datetime.now(UTC)))


def mail_text(raw: bytes) -> tuple[str, str]:
    message = message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(str(message["Subject"]).split()), part.get_content()


def shown(db: Path | str, route: str) -> list[int]:
    with Store(db) as store:
        rows = store._rows(
            "SELECT shown FROM deliveries WHERE route_id = ? ORDER BY item_id", (route,)
        )
    return [r["shown"] for r in rows]


def test_one_event_from_three_outlets_is_one_entry_then_an_update(
    tmp_path: Path, db_target: Path | str
) -> None:
    db, folder = db_target, tmp_path / "rules"
    now = datetime.now(UTC).replace(microsecond=0)
    with FeedServer() as server, SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        for minutes, feed in enumerate(("wire", "toto", "ledger")):
            server.add(f"/{feed}.xml", serve(rss(feed, now - timedelta(minutes=30 - minutes))))
        server.add("/hanbando.xml", serve(rss("hanbando", now, empty=True)))
        write_rules(folder, server, smtp.port, hook.url)
        service = RunningService(folder, db, env={"HOOK_SECRET": SECRET})
        try:
            service.wait_for("delivered to desk")
            assert hook.wait_for_requests(1, WAIT)
            server.add("/hanbando.xml", serve(rss("hanbando", now - timedelta(minutes=10))))
            poll_now(db, "hanbando")
            service.wait_for("delivered to desk")
            # Both routes were frozen in that round: the one without updates sent nothing.
            eventually(lambda: len(shown(db, "ops-now")) == 4, "the Korean report is covered")
        finally:
            assert service.stop() == 0
    log = "\n".join(service.seen)  # shown when an assertion fails: what the service did
    assert len(smtp.messages) == 2, log
    first, update = (mail_text(m.data) for m in smtp.messages)
    assert first[1].count("[HIGH] ") == 1, f"{first[1]}\n{log}"
    assert first[0] == (
        "[monitor] 1 alert: China's Eastern Theater Command launches drills around Taiwan (high)"
    )
    assert "Reported by 3 outlets in en, ja:" in first[1]
    for feed in ("wire", "toto", "ledger"):
        assert f"{TITLES[feed]} ({REPORTS[feed][0]}): {REPORTS[feed][1]}" in first[1]
        assert f"<https://{feed}.example.org/1>" in first[1]
    assert update[0].startswith("[monitor] 1 update: China's Eastern Theater Command")
    assert update[0].endswith("(update: +1 outlet, +ko)")
    assert "new since last sent: 1 outlet (Hanbando Ilbo), language ko:" in update[1]
    assert f"Hanbando Ilbo (ko): {REPORTS['hanbando'][1]}" in update[1]
    [request] = hook.requests
    assert request.verified
    [group] = json.loads(request.body)["groups"]
    [item] = group["items"]
    assert item["story"]["outlets"] == ["wire", "toto", "ledger"]
    assert item["story"]["languages"] == ["en", "ja"]
    assert shown(db, "ops-now") == [1, 1, 1, 3]  # listed with the story; the Korean covered
    assert shown(db, "desk-now") == [1, 1, 1, 1]  # the update listed it


def test_an_immediate_route_gets_the_story_as_soon_as_the_cycle_linked_it(
    tmp_path: Path, db_target: Path | str
) -> None:
    # A tick of an hour: only the wake after the cycle's linking can send the held items now.
    db, folder = db_target, tmp_path / "rules"
    now = datetime.now(UTC).replace(microsecond=0)
    with FeedServer() as server, SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        # Two English outlets: no surge, whose alert would wake the delivery anyway.
        for feed in TITLES:
            empty = feed not in ("wire", "ledger")
            server.add(f"/{feed}.xml", serve(rss(feed, now - timedelta(minutes=5), empty=empty)))
        write_rules(folder, server, smtp.port, hook.url)
        service = RunningService(folder, db, tick=3600, env={"HOOK_SECRET": SECRET})
        try:
            service.wait_for("new reports linked to stories")
            service.wait_for("delivered to desk")
        finally:
            assert service.stop() == 0
    [mail] = smtp.messages
    assert "Reported by 2 outlets in en:" in mail_text(mail.data)[1]  # one entry for both

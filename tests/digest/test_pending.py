"""What a route's digest takes from the pending matches (monitor/digest/collect.py), end to end
with a real SQLite store, SMTP server and webhook receiver.
Expected: items over `max_items` go out in the route's next digest, never dropped; history is
never delivered and `max_age` skips old items; an item the receiver already got from another
route is a one-line reference (unless `repeat: full`); sources are named by their title.
"""

from __future__ import annotations

import email
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from click.testing import CliRunner, Result
from sqlite_utils import Database

from monitor.cli.main import main
from monitor.models import Feed
from monitor.store import MIGRATIONS, Store
from monitor.store.outbox import Outbox
from tests.digest.world import NOW, World, email_channels, hook_channels, make_world, send
from tests.support.receivers import SmtpCatcher, WebhookCatcher

FEEDS = "feeds:\n  - {url: 'http://127.0.0.1:9/wire.xml', id: wire, title: Wire Service}\n"


def run(world: World, *args: str) -> Result:
    argv = ["--rules", str(world.rules_dir), "--db", str(world.db), *args]
    return CliRunner().invoke(main, argv, catch_exceptions=False)


def text_of(raw: bytes) -> tuple[str, str]:
    """(Message-ID's digest id, plain-text part) of a received email."""
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return message["Message-ID"].strip("<>").removesuffix("@monitor"), part.get_content()


def listed(text: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in text.splitlines() if line.startswith("[CRITICAL] ")]


def test_sixty_matches_with_max_items_fifty_go_out_in_two_digests(
    tmp_path: Path, db_target: Path | str
) -> None:
    with make_world(tmp_path, db_target) as world, SmtpCatcher() as smtp:
        (world.rules_dir / "feeds.yaml").write_text(FEEDS, encoding="utf-8")
        world.channels(email_channels(smtp.port, "    max_items: 50\n"))
        now = datetime.now(UTC)
        titles = [f"Taiwan Strait report number {n}" for n in range(60)]
        for n, title in enumerate(titles):  # days apart: 60 stories, not one
            world.add(f"s{n}", title, ["strait"], published=now - timedelta(days=4 * n))
        first = run(world, "digest", "send")
        second = run(world, "digest", "send")
        third = run(world, "digest", "send")
        assert first.exit_code == second.exit_code == third.exit_code == 0
        assert "route desk-now: nothing pending" in third.output
        (first_id, first_text), (_, second_text) = (text_of(m.data) for m in smtp.messages)
        left_out = run(world, "digest", "show", first_id, "--left-out")
    assert len(smtp.messages) == 2
    shown, rest = listed(first_text), listed(second_text)
    assert len(shown) == 50 and len(rest) == 10 and sorted(shown + rest) == sorted(titles)
    assert shown == titles[:50]  # newest first: the oldest ten wait for the next digest
    assert "10 more not shown (they come in the next digest, after the next poll)" in first_text
    assert f"to list them now: monitor digest show {first_id} --left-out" in first_text
    assert "more not shown" not in second_text
    # The footer's command lists exactly the ten left out, nothing else.
    heads = [line for line in left_out.output.splitlines() if line.startswith("[")]
    assert sorted(line.split("  wire  ", 1)[1] for line in heads) == sorted(rest)
    assert "Wire Service · " in first_text  # the source by its feeds.yaml title


def test_history_is_never_delivered_and_max_age_skips_old_items(world: World) -> None:
    with WebhookCatcher() as hook:
        channels = world.channels(hook_channels(hook.url, "    max_age: 2d\n"))
        old_news = world.add("h", "Taiwan Strait history", ["strait"])
        world.mark_history(old_news)
        hour_ago, days_ago = NOW - timedelta(hours=1), NOW - timedelta(days=3)
        world.add("old", "Taiwan Strait three days ago", ["strait"], published=days_ago)
        world.add("new", "Taiwan Strait an hour ago", ["strait"], published=hour_ago)
        assert world.freeze(channels) is not None
        assert world.freeze(channels) is None  # the skipped ones never come
        assert send(world, channels) == [True]
        no_age = world.channels(hook_channels(hook.url).replace("ops-now", "ops-all"))
        assert world.freeze(no_age) is not None  # another route without max_age
        assert send(world, no_age) == [True]
    first, second = (json.loads(r.body) for r in hook.requests)
    titles = [[i["title"] for g in body["groups"] for i in g["items"]] for body in (first, second)]
    assert titles == [["Taiwan Strait an hour ago"], ["Taiwan Strait three days ago"]]
    # The receiver got the recent one from the first route: the second only refers to it.
    assert [s["title"] for s in second["already_sent"]] == ["Taiwan Strait an hour ago"]


DESK_TWO_ROUTES = """\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: monitor@example.org,
            smtp: {{host: 127.0.0.1, port: {port}, tls: none}}}}
routes:
  - id: desk-critical
    receiver: desk
    match: {{severity: [critical]}}
  - id: desk-daily
    receiver: desk
    schedule: "0 7 * * *"
    timezone: Asia/Tokyo
{extra}"""


def test_an_item_already_sent_to_the_receiver_is_a_one_line_reference(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(DESK_TWO_ROUTES.format(port=smtp.port, extra=""))
        critical, daily = channels.routes
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        world.add("b", "Economy slows down", ["economy"])
        world.freeze(replace(channels, routes=(critical,)))
        assert send(world, channels) == [True]  # 09:00 UTC is 18:00 in Tokyo
        world.freeze(replace(channels, routes=(daily,)), NOW + timedelta(hours=1))
        assert send(world, channels, NOW + timedelta(hours=1)) == [True]
    (_, immediate), (_, later) = (text_of(m.data) for m in smtp.messages)
    assert "[CRITICAL] PLA drills in the Taiwan Strait" in immediate
    assert "[LOW] Economy slows down" in later
    assert "[CRITICAL] PLA drills in the Taiwan Strait\n" not in later.replace("\r\n", "\n")
    reference = "- [CRITICAL] PLA drills in the Taiwan Strait: already sent at 18:00"
    assert "== Already sent (1) ==" in later and reference in later
    assert later.index("== Already sent") > later.index("[LOW] Economy slows down")


def test_repeat_full_shows_items_sent_before_in_full(world: World) -> None:
    with SmtpCatcher() as smtp:
        extra = "    repeat: full\n"
        channels = world.channels(DESK_TWO_ROUTES.format(port=smtp.port, extra=extra))
        critical, daily = channels.routes
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        world.freeze(replace(channels, routes=(critical,)))
        assert send(world, channels) == [True]
        world.freeze(replace(channels, routes=(daily,)), NOW + timedelta(hours=1))
        assert send(world, channels, NOW + timedelta(hours=1)) == [True]
    [_, (_, later)] = (text_of(m.data) for m in smtp.messages)
    assert "[CRITICAL] PLA drills in the Taiwan Strait" in later and "Already sent" not in later


def test_sources_are_named_by_their_feeds_title_else_their_id(world: World) -> None:
    with WebhookCatcher() as hook:
        channels = world.channels(hook_channels(hook.url, "    group_by: [severity]\n"))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"], feed="wire")
        world.add("b", "Economy slows down", ["economy"], feed="gone-feed")
        feeds = {"wire": Feed(id="wire", url="https://wire.example/rss", title="Wire Service")}
        world.freeze(channels, feeds=feeds)
        assert send(world, channels) == [True]
    body = json.loads(hook.requests[0].body)
    sources = {i["feed"]: i["feed_title"] for g in body["groups"] for i in g["items"]}
    assert sources == {"wire": "Wire Service", "gone-feed": "gone-feed"}


def test_items_an_older_version_summarised_are_pending_again(tmp_path: Path) -> None:
    # Before m008 a digest claimed the items it only counted (`deliveries.shown = 0`), so they
    # never came. Opening such a database releases them and keeps the record in `left_out`.
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        MIGRATIONS.apply(Database(conn), stop_before="m008_digest_upkeep")
        stamp = NOW.isoformat(timespec="microseconds")
        for n in (1, 2):
            conn.execute(
                "INSERT INTO items (id, feed_id, guid, title, summary, html, published,"
                " first_seen, content_hash) VALUES (?, 'wire', ?, 'Strait', '', '', ?, ?, ?)",
                (n, f"g{n}", stamp, stamp, f"h{n}"),
            )
            conn.execute(
                "INSERT INTO matches (item_id, rule_id, score, hits, matched_at)"
                " VALUES (?, 'strait', 0, '[]', ?)",
                (n, stamp),
            )
        conn.execute(
            "INSERT INTO digests (id, route_id, receiver_id, kind, created, subject, content_type,"
            " body, shown, truncated, status) VALUES ('old', 'ops-now', 'ops', 'webhook', ?, 's',"
            " 'application/json', x'7b7d', 1, 1, 'delivered')",
            (stamp,),
        )
        conn.executemany(
            "INSERT INTO deliveries (route_id, item_id, digest_id, shown) VALUES (?, ?, ?, ?)",
            [("ops-now", 1, "old", 1), ("ops-now", 2, "old", 0)],
        )
        conn.commit()
    with Store(path) as store:
        outbox = Outbox(store)
        assert [m.item_id for m in outbox.pending("ops-now", NOW - timedelta(days=1))] == [2]
        assert outbox.left_out("old") == [2]

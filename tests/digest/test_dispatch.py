"""Digests end to end: stored matches -> frozen digest -> real SMTP server / webhook receiver.

Checks the promises: an item reaches a route at most once; a digest is frozen before it is
sent and every retry sends the same bytes with the same id; failures back off, honour
Retry-After, go dead after too long or on a permanent error; 410 disables a receiver; a process
killed between send and record loses nothing and resends at most once, byte-identical.
"""

from __future__ import annotations

import email
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy

from click.testing import CliRunner

from monitor.cli.main import main
from monitor.store.outbox import Outbox
from tests.digest.world import (
    NOW,
    SECRET,
    World,
    email_channels,
    hook_channels,
    send,
)
from tests.support.receivers import SmtpCatcher, WebhookCatcher, answer, stall


def test_an_email_digest_is_sent_once_with_both_parts(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        Outbox(world.store).route_start("desk-now", NOW - timedelta(hours=1))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        world.add("b", "台湾海峡で演習 economy", ["strait", "economy"])
        digest_id = world.freeze(channels)
        assert digest_id is not None
        assert send(world, channels) == [True]
        assert world.freeze(channels) is None  # nothing new: no second digest
        assert send(world, channels) == []
    [mail] = smtp.messages
    message = email.message_from_bytes(mail.data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == f"<{digest_id}@monitor>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "台湾海峡で演習" in text.get_content() and "台湾海峡で演習" in html.get_content()
    assert "critical" in html.get_content().lower()
    assert Outbox(world.store).counts() == {"delivered": 1}


def test_a_failed_webhook_is_retried_with_the_same_bytes_and_id(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        world.freeze(channels)
        hook.script(answer(500))
        assert send(world, channels) == [False]
        [waiting] = Outbox(world.store).recent(("retrying",))
        assert waiting.next_attempt is not None and waiting.next_attempt > NOW
        assert send(world, channels, NOW) == []  # not yet due
        assert send(world, channels, waiting.next_attempt) == [True]
    first, second = hook.requests
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == waiting.id
    assert first.verified and second.verified
    body = json.loads(second.body)
    assert body["digest_id"] == waiting.id
    assert body["groups"][0]["items"][0]["title"] == "PLA drills in the Taiwan Strait"


def test_retry_after_is_honoured(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        world.freeze(channels)
        hook.script(answer(429, headers={"Retry-After": "600"}))
        assert send(world, channels, NOW) == [False]
    [waiting] = Outbox(world.store).recent(("retrying",))
    assert waiting.next_attempt is not None
    assert waiting.next_attempt >= NOW + timedelta(seconds=600)


def test_gone_disables_the_receiver_until_enabled(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        outbox = Outbox(world.store)
        outbox.route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        world.freeze(channels)
        hook.script(answer(410))
        assert send(world, channels) == [False]
        assert outbox.counts() == {"dead": 1}
        assert "ops" in outbox.disabled()
        world.add("b", "Taiwan Strait again", ["strait"])
        world.freeze(channels, NOW + timedelta(minutes=1))
        assert send(world, channels, NOW + timedelta(minutes=1)) == []  # held back
        assert outbox.enable_receiver("ops")
        assert send(world, channels, NOW + timedelta(minutes=2)) == [True]


def test_a_permanent_failure_is_dead_until_requeued(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        outbox = Outbox(world.store)
        outbox.route_start("ops-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None
        hook.script(answer(400))
        assert send(world, channels) == [False]
        [dead] = outbox.recent(("dead",))
        assert "400" in (dead.last_error or "")
        assert outbox.requeue(digest_id, NOW)
        assert send(world, channels) == [True]
    assert hook.requests[0].body == hook.requests[1].body


def test_a_digest_failing_for_too_long_goes_dead(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port, "    give_up_after: 2h\n"))
        Outbox(world.store).route_start("desk-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        world.freeze(channels)
        smtp.stop()  # the server is down
        assert send(world, channels, NOW + timedelta(minutes=30)) == [False]  # retried
        assert send(world, channels, NOW + timedelta(hours=2)) == [False]  # too old now
    [dead] = Outbox(world.store).recent(("dead",))
    assert (dead.last_error or "").startswith("gave up after 2 h")


def test_smtp_down_then_up(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        Outbox(world.store).route_start("desk-now", NOW - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        world.freeze(channels)
        smtp.stop()
        assert send(world, channels) == [False]
        smtp.start()
        [waiting] = Outbox(world.store).recent(("retrying",))
        assert waiting.next_attempt is not None
        assert send(world, channels, waiting.next_attempt) == [True]
    assert len(smtp.messages) == 1


def test_max_items_leaves_the_rest_for_the_next_digest_and_route_filters_apply(
    world: World,
) -> None:
    extra = "    max_items: 2\n    match: {severity: [critical]}\n"
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url, extra))
        Outbox(world.store).route_start("ops-now", NOW - timedelta(hours=1))
        headlines = (
            "Destroyers sail through the Taiwan Strait",
            "Beijing announces live-fire zone off Fujian facing the Taiwan Strait",
            "Coast guard boards a cargo ship near Kinmen in the Taiwan Strait",
        )
        for n, headline in enumerate(headlines):
            world.add(f"s{n}", headline, ["strait"])
        world.add("e", "economy only", ["economy"])  # low severity: not for this route
        first = world.freeze(channels)
        assert send(world, channels) == [True]
        assert world.freeze(channels) is not None  # the one left out is still pending
        assert send(world, channels) == [True]
        assert world.freeze(channels) is None  # and now nothing is
    body, rest = (json.loads(r.body) for r in hook.requests)
    titles = [i["title"] for g in body["groups"] for i in g["items"]]
    assert len(titles) == 2 and "economy only" not in titles
    assert body["truncated"] == 1 and f"monitor digest show {first} --left-out" in body["more"]
    [[later]] = [[i["title"] for i in g["items"]] for g in rest["groups"]]
    assert later in headlines and later not in titles and rest["truncated"] == 0


def test_a_new_route_takes_the_last_day_of_matches_only(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        world.add("old", "Taiwan Strait before the route existed", ["strait"])
        channels = world.channels(hook_channels(hook.url))
        # First seen two days after the match (matches are stamped with the real clock).
        assert world.freeze(channels, datetime.now(UTC) + timedelta(days=2)) is None
    with WebhookCatcher(secret=SECRET) as hook:
        other = world.channels(hook_channels(hook.url).replace("ops-now", "ops-fresh"))
        # A route first seen an hour after the match still catches up on it.
        assert world.freeze(other, datetime.now(UTC) + timedelta(hours=1)) is not None


def test_killed_between_send_and_record_resends_once_byte_identical(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        (world.rules_dir / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
        Outbox(world.store).route_start("ops-now", datetime.now(UTC) - timedelta(hours=1))
        world.add("a", "Taiwan Strait", ["strait"])
        hook.script(stall())  # the receiver takes the request and never answers
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--rules", str(world.rules_dir),
             "--db", str(world.db), "digest", "send"],
            env={"HOOK_SECRET": SECRET, "PATH": ""},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert hook.wait_for_requests(1, 30)  # sent...
        proc.send_signal(signal.SIGKILL)  # ...and killed before recording it
        assert proc.wait(timeout=10) == -signal.SIGKILL
        outbox = Outbox(world.store)
        [frozen] = outbox.recent(("pending",))  # frozen before the send: not lost
        assert send(world, channels) == []  # leased by the dead process for a while
        later = datetime.now(UTC) + timedelta(minutes=6)
        assert send(world, channels, later) == [True]
        assert world.freeze(channels, later) is None  # the item is not in a second digest
    first, second = hook.requests
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == frozen.id
    assert outbox.counts() == {"delivered": 1}


def test_enabling_a_receiver_that_is_not_disabled_says_why(world: World) -> None:
    # A typo names the receivers there are; a known one that is not disabled says that.
    (world.rules_dir / "channels.yaml").write_text(hook_channels("http://127.0.0.1:9/hook"))

    def enable(receiver: str) -> str:
        args = ["--rules", str(world.rules_dir), "--db", str(world.db), "digest", "enable"]
        result = CliRunner().invoke(main, [*args, receiver])
        assert result.exit_code == 1, result.output
        return result.stderr

    channels_file = world.rules_dir / "channels.yaml"
    assert enable("opps") == f"monitor: no receiver 'opps' in {channels_file} (receivers: ops)\n"
    assert enable("ops") == "monitor: receiver 'ops' is not disabled\n"
    Outbox(world.store).disable_receiver("ops", "410 Gone", NOW)
    args = ["--rules", str(world.rules_dir), "--db", str(world.db), "digest", "enable", "ops"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0 and done.stdout == "receiver ops enabled\n", done.output

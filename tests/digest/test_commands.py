"""`monitor digest show` and `monitor digest retry` (monitor/cli/digest.py) on a real store,
SMTP server and webhook receiver.
Expected: `show` prints a frozen digest's headers and text (or its JSON body), `--raw` the
exact stored bytes; `retry` sends a dead or a retrying digest now, byte-identical, and says
plainly why it will not send any other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.store.outbox import Outbox
from tests.digest.world import ENV, SECRET, World, email_channels, hook_channels, send
from tests.support.receivers import SmtpCatcher, WebhookCatcher, answer


def run(world: World, *args: str) -> Result:
    argv = ["--rules", str(world.rules_dir), "--db", str(world.db), *args]
    return CliRunner(env=ENV).invoke(main, argv, catch_exceptions=False)


def test_show_prints_an_email_digest_and_its_exact_bytes(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None and send(world, channels) == [True]
    shown = run(world, "digest", "show", digest_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"# digest {digest_id}: route desk-now -> desk, delivered, 1 attempts"
    assert f"Message-ID: <{digest_id}@monitor>" in lines
    assert "Subject: [monitor] 1 alert: PLA drills in the Taiwan Strait (critical)" in lines
    assert "[CRITICAL] PLA drills in the Taiwan Strait" in lines
    raw = run(world, "digest", "show", digest_id, "--raw")
    frozen = Outbox(world.store).get(digest_id)
    assert frozen is not None and raw.stdout_bytes == frozen.body == smtp.messages[0].data


def test_show_prints_a_webhook_body_and_refuses_an_unknown_id(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None
    shown = run(world, "digest", "show", digest_id)
    head, _, body = shown.output.partition("\n")
    assert head == f"# digest {digest_id}: route ops-now -> ops, pending, 0 attempts"
    assert json.loads(body)["digest_id"] == digest_id
    missing = run(world, "digest", "show", "no-such-digest")
    assert missing.exit_code == 1 and "no digest 'no-such-digest'" in missing.output
    nothing = run(world, "digest", "show", digest_id, "--left-out")
    assert nothing.exit_code == 0 and f"digest {digest_id} left nothing out" in nothing.output


def test_retry_sends_a_retrying_digest_now_byte_identical(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        now = datetime.now(UTC)
        digest_id = world.freeze(channels, now)
        assert digest_id is not None
        hook.script(answer(503))
        assert send(world, channels, now) == [False]
        waiting = Outbox(world.store).get(digest_id)
        assert waiting is not None and waiting.status == "retrying"
        assert waiting.next_attempt is not None and waiting.next_attempt > now
        retried = run(world, "digest", "retry", digest_id)  # no waiting for the backoff
        assert retried.exit_code == 0, retried.output
        assert f"digest {digest_id} delivered to ops" in retried.output
        again = run(world, "digest", "retry", digest_id)
    first, second = hook.requests
    assert first.body == second.body and second.headers["webhook-id"] == digest_id
    assert second.verified
    assert again.exit_code == 1 and "is delivered: only a dead or retrying digest" in again.output
    assert Outbox(world.store).counts() == {"delivered": 1}


def test_retry_reports_a_failure_again_and_leaves_a_leased_digest_alone(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        world.add("a", "PLA drills in the Taiwan Strait", ["strait"])
        now = datetime.now(UTC)
        digest_id = world.freeze(channels, now)
        assert digest_id is not None
        hook.script(answer(400), answer(500))
        assert send(world, channels, now) == [False]  # 400: dead at once
        failed = run(world, "digest", "retry", digest_id)
        assert failed.exit_code == 1 and "failed again (retrying)" in failed.output
        # Another process leases it (it is sending it right now): retry keeps its hands off.
        outbox = Outbox(world.store)
        assert outbox.requeue(digest_id, now)
        assert outbox.lease(digest_id, now, now + timedelta(minutes=5))
        busy = run(world, "digest", "retry", digest_id)
    assert busy.exit_code == 1 and "being sent by another monitor process" in busy.output
    assert len(hook.requests) == 2

"""A failure building or sending one digest stays with that digest and route
(monitor/digest/dispatch.py), with a real store, SMTP server and webhook receiver.
Expected: the other routes still deliver; the failure is logged with the route id, recorded
where `monitor status` shows it, and tried again later; nothing pending is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType

import pytest
from click.testing import CliRunner

from monitor.cli.main import main
from monitor.digest.channels import Channels
from monitor.digest.dispatch import freeze_routes, routes_to_retry, send_due
from monitor.models import Receiver, WebhookReceiver
from monitor.store.outbox import Outbox
from monitor.store.routes import RouteHealth
from tests.digest.world import ENV, NOW, SECRET, World, send
from tests.support.receivers import SmtpCatcher, WebhookCatcher

TWO_RECEIVERS = """\
receivers:
  - id: desk
    email: {{to: [desk@example.org], from: monitor@example.org,
            smtp: {{host: 127.0.0.1, port: {port}, tls: none}}}}
  - id: ops
    webhook: {{url: "{url}", secret_env: HOOK_SECRET}}
routes:
  - id: ops-economy
    receiver: ops
    match: {{rules: [economy]}}
  - id: desk-all
    receiver: desk
"""


def with_receiver(channels: Channels, receiver: Receiver) -> Channels:
    """The channels with one receiver replaced, as an edit of channels.yaml would do."""
    return replace(
        channels, receivers=MappingProxyType({**channels.receivers, receiver.id: receiver})
    )


def test_a_rule_title_written_as_a_yaml_block_breaks_no_delivery(world: World) -> None:
    # `title: >` ends in a newline: once it made the Subject header fail and stopped every
    # route. Another route (the webhook, not even taking that rule) got nothing.
    rules = {**world.rules, "strait": replace(world.rules["strait"], title="Military\npressure\n")}
    with SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(TWO_RECEIVERS.format(port=smtp.port, url=hook.url))
        for n, topic in enumerate(("Destroyers", "Live fire", "Boarding", "Jets")):
            days_apart = NOW - timedelta(days=4 * n)  # four stories, not one
            world.add(f"s{n}", f"{topic} in the Taiwan Strait", ["strait"], published=days_apart)
        world.add("e", "Economy slows down", ["economy"])
        frozen = freeze_routes(world.store, channels.routes, channels, rules, {}, NOW)
        assert sorted(d.route_id for d in frozen) == ["desk-all", "ops-economy"]
        assert send(world, channels) == [True, True]
    assert len(hook.requests) == 1
    [mail] = smtp.messages
    assert b"Subject: [monitor] 5 alerts: Military pressure (4, critical), Economy (1)" in mail.data


def test_a_route_that_cannot_be_built_is_recorded_and_the_others_deliver(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        good = world.channels(TWO_RECEIVERS.format(port=smtp.port, url=hook.url))
        broken = with_receiver(
            good, Receiver("ops", webhook=WebhookReceiver(hook.url, format="xml"))
        )
        world.add("e", "Economy slows down", ["economy"])
        with caplog.at_level(logging.ERROR, logger="monitor.dispatch"):
            frozen = freeze_routes(world.store, broken.routes, broken, world.rules, {}, NOW)
        assert [d.route_id for d in frozen] == ["desk-all"]
        assert send(world, broken) == [True]
        assert "route ops-economy: cannot build the digest: ValueError" in caplog.text
        [trouble] = RouteHealth(world.store).troubled()
        assert trouble.route_id == "ops-economy" and trouble.failures == 1
        assert "unknown webhook format 'xml'" in trouble.last_error
        assert trouble.retry_at is not None and trouble.retry_at > NOW
        assert routes_to_retry(world.store, good, NOW) == []  # not yet
        status = run_status(world)
        [shown] = status["deliveries"]["failing_routes"]
        assert shown["route"] == "ops-economy" and shown["failures"] == 1
        # Fixed (here: the file edited back); the route's matches were kept pending.
        again = routes_to_retry(world.store, good, trouble.retry_at)
        assert [r.id for r in again] == ["ops-economy"]
        assert freeze_routes(world.store, again, good, world.rules, {}, trouble.retry_at)
        assert RouteHealth(world.store).troubled() == []
        assert send(world, good, trouble.retry_at) == [True]
    assert len(smtp.messages) == 1
    assert json.loads(hook.requests[0].body)["groups"][0]["items"][0]["title"] == (
        "Economy slows down"
    )


def run_status(world: World) -> dict[str, dict[str, list[dict[str, object]]]]:
    (world.rules_dir / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    argv = ["--rules", str(world.rules_dir), "--db", str(world.db), "status", "--json"]
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = CliRunner().invoke(main, argv[:-1], catch_exceptions=False).output
    assert "route ops-economy: digest not built (1 failure, first " in text
    doc: dict[str, dict[str, list[dict[str, object]]]] = json.loads(result.output)
    return doc


def test_an_unexpected_error_sending_one_digest_spares_the_others(world: World) -> None:
    with SmtpCatcher() as smtp, WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(TWO_RECEIVERS.format(port=smtp.port, url=hook.url))
        world.add("e", "Economy slows down", ["economy"])
        ops, desk = channels.routes
        freeze_routes(world.store, [ops], channels, world.rules, {}, NOW)  # first in line
        freeze_routes(world.store, [desk], channels, world.rules, {}, NOW + timedelta(seconds=1))
        # Since then, `ops` was edited into an email receiver: its frozen webhook digest
        # cannot go out by mail (the sender refuses it outright).
        edited = with_receiver(channels, Receiver("ops", email=channels.receivers["desk"].email))
        results = asyncio.run(send_due(world.store, edited, ENV, NOW + timedelta(seconds=1)))
        assert [(d.route_id, r.ok) for d, r in results] == [
            ("ops-economy", False),
            ("desk-all", True),
        ]
        [waiting] = Outbox(world.store).recent(("retrying",))
        assert waiting.route_id == "ops-economy" and waiting.next_attempt is not None
        assert (waiting.last_error or "").startswith("unexpected error: ValueError: digest")
        assert send(world, channels, waiting.next_attempt + timedelta(seconds=1)) == [True]
    assert len(smtp.messages) == 1 and len(hook.requests) == 1 and hook.requests[0].verified

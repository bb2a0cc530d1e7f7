"""The console's deliveries page (`/deliveries`), with digests made and failed for real: a
real store (a SQLite file, then a PostgreSQL database), the real freeze and send path, a real
SMTP server (aiosmtpd) that refuses and a real webhook receiver that answers 410 Gone.

Expected: dead, retrying and pending digests are listed with route, receiver, attempts and
the (redacted) last error; Retry (a POST carrying the CSRF field) requeues a dead digest,
which `monitor digest send` then delivers byte-identical; a POST without the field changes
nothing; a receiver disabled after a 410 is listed with an Enable button that enables it;
one digest's page shows its items and text; no secret is ever in a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import lxml.html
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from monitor.cli.main import main
from monitor.store.location import DbLocation
from monitor.store.outbox import Outbox
from monitor.web.app import create_app
from monitor.web.config import WebConfig
from monitor.web.pages import deliveries
from tests.digest.world import (
    ENV,
    NOW,
    SECRET,
    World,
    email_channels,
    hook_channels,
    make_world,
    send,
)
from tests.support.receivers import SmtpCatcher, WebhookCatcher, answer
from tests.support.service import RunningService

from .conftest import DemoState, csrf_of, make_client, on_both

TITLE = "PLA drills in the Taiwan Strait"


@pytest.fixture
def world(tmp_path: Path, db_target: Path | str) -> Iterator[World]:
    """Once on a SQLite file, once on a PostgreSQL database."""
    with make_world(tmp_path, db_target) as made:
        yield made


def console_of(world: World) -> TestClient:
    return make_client(DemoState(db=world.db, rules=world.rules_dir))


def digest_row(html: str, digest_id: str) -> lxml.html.HtmlElement:
    [row] = lxml.html.fromstring(html).xpath(f"//tr[@id='digest-{digest_id}']")
    return row


def notice(html: str) -> str:
    return str(lxml.html.fromstring(html).xpath("//p[@id='notice']")[0].text_content())


def status(world: World, digest_id: str) -> str:
    frozen = Outbox(world.store).get(digest_id)
    assert frozen is not None
    return frozen.status


def dead_digest(world: World, smtp: SmtpCatcher, reply: str, stage: str) -> str:
    """A digest of one matched item whose send the SMTP server refused for good (`reply` at
    `stage`): the real freeze and send path leaves it dead or, for a retryable reply, not sent."""
    channels = world.channels(email_channels(smtp.port))
    world.add("a", TITLE, ["strait"])
    digest_id = world.freeze(channels)
    assert digest_id is not None
    smtp.fail_next(reply, stage=stage)
    assert send(world, channels) == [False]
    return digest_id


def test_a_dead_digest_is_retried_from_the_page_then_sent(world: World) -> None:
    with SmtpCatcher() as smtp:
        digest_id = dead_digest(world, smtp, "550 5.7.1 relaying denied", "RCPT")
        assert status(world, digest_id) == "dead"
        with console_of(world) as client:
            row = digest_row(client.get("/deliveries").text, digest_id)
            assert row.get("data-status") == "dead"
            assert (
                "550 5.7.1 relaying denied"
                in row.xpath("./td[@class='last-error']")[0].text_content()
            )
            assert row.xpath("./td[2]/text()") == ["desk-now"]
            [form] = row.xpath(".//form")
            assert form.get("method") == "post"
            action = form.get("action")
            assert action == f"/deliveries/{digest_id}/retry"
            csrf = csrf_of(client)
            assert form.xpath(".//input[@name='csrf']/@value") == [csrf]

            assert client.post(action, data={}).status_code == 403  # no CSRF field
            assert client.post(action, data={"csrf": "forged"}).status_code == 403
            assert status(world, digest_id) == "dead"

            done = client.post(action, data={"csrf": csrf}, follow_redirects=False)
            assert done.status_code == 303
            where = done.headers["location"]
            assert where == f"/deliveries?notice=requeued&digest={digest_id}#digest-{digest_id}"
            assert status(world, digest_id) == "pending"
            after = client.get(where).text
            assert f"Digest {digest_id} is queued again" in notice(after)
            assert digest_row(after, digest_id).get("data-status") == "pending"
            assert not digest_row(after, digest_id).xpath(".//form")  # nothing to retry now

            argv = ["--rules", str(world.rules_dir), "--db", str(world.db), "digest", "send"]
            sent = CliRunner(env=ENV).invoke(main, argv, catch_exceptions=False)
            assert sent.exit_code == 0, sent.output
            assert f"digest {digest_id} (1 items) to desk: delivered" in sent.output
            frozen = Outbox(world.store).get(digest_id)
            assert frozen is not None and frozen.status == "delivered"
            assert [m.data for m in smtp.messages] == [frozen.body]  # the bytes frozen at first

            again = client.post(action, data={"csrf": csrf})  # a delivered digest stays so
            assert "only a dead or retrying digest is sent again" in notice(again.text)
            assert status(world, digest_id) == "delivered"


def test_a_running_service_sends_a_digest_retried_on_its_console(world: World) -> None:
    with SmtpCatcher() as smtp:
        digest_id = dead_digest(world, smtp, "550 5.1.1 no such mailbox", "RCPT")
        assert status(world, digest_id) == "dead"
        # A tick of a minute: the digest can only leave within the wait because the retry
        # wakes the delivery job.
        service = RunningService(world.rules_dir, world.db, tick=60)
        try:
            with httpx.Client(base_url=service.url) as browser:
                listing = browser.get("/deliveries")
                assert digest_row(listing.text, digest_id).get("data-status") == "dead"
                csrf = browser.cookies["monitor_csrf"]
                done = browser.post(f"/deliveries/{digest_id}/retry", data={"csrf": csrf})
                assert done.status_code == 303
            service.wait_for(f"digest {digest_id} delivered to desk")
        finally:
            service.stop()
        frozen = Outbox(world.store).get(digest_id)
        assert frozen is not None and frozen.status == "delivered"
        assert [m.data for m in smtp.messages] == [frozen.body]


def test_a_retrying_digest_has_its_next_try_and_a_retry_button(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        world.add("a", TITLE, ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None
        hook.script(answer(503, body=b"down for maintenance"))
        assert send(world, channels) == [False]
    with console_of(world) as client:
        doc = lxml.html.fromstring(client.get("/deliveries").text)
        [row] = doc.xpath(f"//table[@id='digests-retrying']//tr[@data-digest='{digest_id}']")
        assert row.xpath(".//time")  # the next try, in UTC
        assert "HTTP 503: down for maintenance" in row.text_content()
        assert row.xpath(f".//button[@id='retry-{digest_id}']")
        counts = {
            li.get("data-status"): li.xpath("./strong/text()")[0]
            for li in doc.xpath("//ul[@id='delivery-counts']/li")
        }
        assert counts == {"pending": "0", "retrying": "1", "delivered": "0", "dead": "0"}


def test_a_receiver_gone_is_enabled_from_the_page_and_no_secret_shows(world: World) -> None:
    with WebhookCatcher(secret=SECRET) as hook:
        channels = world.channels(hook_channels(hook.url))
        world.add("a", TITLE, ["strait"])
        digest_id = world.freeze(channels)
        assert digest_id is not None
        hook.script(answer(410, body=f"gone; you sent {SECRET}".encode()))  # echoes the secret
        assert send(world, channels) == [False]
    assert Outbox(world.store).disabled().keys() == {"ops"}
    with console_of(world) as client:
        listing = client.get("/deliveries").text
        one = client.get(f"/deliveries/{digest_id}").text
        for html in (listing, one):
            assert SECRET not in html and SECRET[6:] not in html
        assert "[redacted]" in listing
        [row] = lxml.html.fromstring(listing).xpath(
            "//table[@id='disabled-receivers']//tr[@data-receiver='ops']"
        )
        assert "endpoint is gone" in row.text_content()
        action = row.xpath(".//form/@action")[0]
        assert action == "/deliveries/receivers/ops/enable"
        assert client.post(action, data={}).status_code == 403
        assert Outbox(world.store).disabled().keys() == {"ops"}
        done = client.post(action, data={"csrf": csrf_of(client)})
        assert done.url.path == "/deliveries"
        assert notice(done.text) == "Receiver ops is enabled: its digests go out again."
        assert Outbox(world.store).disabled() == {}
        assert not lxml.html.fromstring(done.text).xpath("//table[@id='disabled-receivers']")
        twice = client.post(action, data={"csrf": csrf_of(client)})
        assert "was not disabled" in notice(twice.text)


def test_a_digest_page_lists_its_items_and_text(world: World) -> None:
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        item_id = world.add("a", TITLE, ["strait"])
        world.add("b", "中国軍、台湾海峡で演習", ["strait"], lang="ja")
        digest_id = world.freeze(channels)
        assert digest_id is not None
    with console_of(world) as client:
        response = client.get(f"/deliveries/{digest_id}")
        assert response.status_code == 200
        doc = lxml.html.fromstring(response.text)
        assert doc.xpath("//h1/text()")[0].startswith("[monitor] 2 alerts")
        links = doc.xpath("//ol[@id='digest-items']/li/a[starts-with(@href, '/items/')]")
        assert {a.text: a.get("lang") for a in links} == {
            TITLE: "en",
            "中国軍、台湾海峡で演習": "ja",
        }
        assert f"/items/{item_id}" in [a.get("href") for a in links]
        outlets = doc.xpath("//ol[@id='digest-items']//a[@class='outlet']")
        assert outlets and all(a.get("rel") == "noopener noreferrer" for a in outlets)
        assert TITLE in doc.xpath("//pre[@id='digest-text']")[0].text_content()
        assert doc.xpath("//dl[@id='digest-facts']/@data-status") == ["pending"]
        assert not doc.xpath("//button[@data-retry]")  # pending: the service sends it anyway
        missing = client.get("/deliveries/no-such-digest")
        assert missing.status_code == 404
        alert = lxml.html.fromstring(missing.text).xpath("//p[@role='alert']")[0]
        assert alert.text_content().startswith("no digest 'no-such-digest'")
        refused = client.post("/deliveries/no-such-digest/retry", data={"csrf": csrf_of(client)})
        assert refused.status_code == 404


def test_retry_wakes_the_services_delivery_job(world: World) -> None:
    with SmtpCatcher() as smtp:
        digest_id = dead_digest(world, smtp, "554 5.7.1 rejected", "DATA")
    woken: list[bool] = []
    config = WebConfig(
        db=DbLocation(world.db), rules_dir=world.rules_dir, wake_delivery=lambda: woken.append(True)
    )
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        action = f"/deliveries/{digest_id}/retry"
        client.post(action, data={"csrf": csrf_of(client)})
        assert woken == [True]
        client.post(action, data={"csrf": csrf_of(client)})  # pending now: nothing to wake for
        assert woken == [True]


@on_both
def test_the_demo_shows_its_delivered_digests_and_says_nothing_waits(client: TestClient) -> None:
    doc = lxml.html.fromstring(client.get("/deliveries").text)
    empty = " ".join(doc.xpath("//p[@id='deliveries-empty']")[0].text_content().split())
    assert "Nothing is waiting, retrying or dead: every digest went out." in empty
    delivered = doc.xpath("//table[@id='digests-delivered']/tbody/tr")
    assert len(delivered) == 5
    surges = [r for r in delivered if r.xpath(".//span[contains(@class, 'surge')]")]
    assert surges and all(r.xpath("./td[2]/text()") == ["desk-surges"] for r in surges)
    assert not doc.xpath("//button[@data-retry]")


def test_newer_pending_digests_never_push_a_dead_one_off_the_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries, "SHOWN", 1)  # the page's limit, made small
    with SmtpCatcher() as smtp:
        channels = world.channels(email_channels(smtp.port))
        world.add("a", TITLE, ["strait"])
        dead = world.freeze(channels)
        smtp.fail_next("550 5.1.1 no such mailbox", stage="RCPT")
        assert send(world, channels) == [False]
        world.add("b", "Coast guard drills in the Taiwan Strait", ["strait"])
        newer = world.freeze(channels, NOW + timedelta(minutes=1))
    assert dead is not None and newer is not None
    with console_of(world) as client:
        doc = lxml.html.fromstring(client.get("/deliveries").text)
    assert doc.xpath("//table[@id='digests-dead']//tr/@data-digest") == [dead]
    assert doc.xpath("//table[@id='digests-pending']//tr/@data-digest") == [newer]

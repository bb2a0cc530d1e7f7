"""The deliveries page in a real browser: a dead digest retried with its button (a POST with
the page's CSRF token) is sent by the running service to a real SMTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser

from monitor.store import Store
from monitor.store.outbox import Outbox
from tests.support.receivers import SmtpCatcher
from tests.support.service import WAIT, RunningService
from tests.web.conftest import DemoState

from .conftest import Tab, copy_demo, open_tab, start_service


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpCatcher]:
    with SmtpCatcher() as catcher:
        yield catcher


@dataclass(frozen=True)
class Dead:
    service: RunningService
    digests: tuple[str, str]  # one for each test: the first is retried, the second forged


@pytest.fixture(scope="module")
def dead(
    demo_state: DemoState, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpCatcher
) -> Iterator[Dead]:
    """The service with two of the demo's email digests dead (given up after a refusal),
    their receiver now pointing at a real SMTP server that accepts."""
    state = copy_demo(demo_state, tmp_path_factory.mktemp("dead"))
    channels = state.rules / "channels.yaml"
    text = channels.read_text()
    channels.write_text(re.sub(r"port: \d+, tls: none", f"port: {smtp.port}, tls: none", text))
    with Store(state.db) as store:
        outbox = Outbox(store)
        emails = [d.id for d in outbox.recent(["delivered"]) if d.kind == "email"][:2]
        for digest_id in emails:
            outbox.record_failure(digest_id, "550 5.1.1 mailbox unavailable", None)
    service = start_service(state)
    yield Dead(service, (emails[0], emails[1]))
    assert service.stop() == 0


@pytest.fixture
def dead_tab(chromium: Browser, dead: Dead) -> Iterator[Tab]:
    yield from open_tab(chromium, dead.service.url)


def test_retrying_a_dead_digest_sends_it(dead: Dead, dead_tab: Tab, smtp: SmtpCatcher) -> None:
    digest_id = dead.digests[0]
    page = dead_tab.open("/deliveries")
    row = page.locator(f"#digests-dead tr[data-digest='{digest_id}']")
    assert "550 5.1.1" in row.locator("td.last-error").inner_text()
    sent = len(smtp.messages)

    row.locator(f"button[data-retry='{digest_id}']").click()
    page.wait_for_url("**/deliveries?notice=requeued**")
    assert page.locator("#notice").inner_text()
    dead.service.wait_for(f"digest {digest_id} delivered to desk")
    assert len(smtp.messages) == sent + 1
    assert b"Subject:" in smtp.messages[-1].data

    # The service records the delivery just after it logs it: reload until the page says so.
    status = page.locator(f"tr[data-digest='{digest_id}']").first
    deadline = time.monotonic() + WAIT
    page.reload()
    while status.get_attribute("data-status") != "delivered":
        assert time.monotonic() < deadline, "the page still shows the digest undelivered"
        page.reload()
    assert page.locator(f"#digests-dead tr[data-digest='{digest_id}']").count() == 0
    dead_tab.seen.assert_clean()


def test_a_retry_without_the_page_token_is_refused(
    dead: Dead, dead_tab: Tab, smtp: SmtpCatcher
) -> None:
    digest_id = dead.digests[1]
    page = dead_tab.open("/deliveries")
    sent = len(smtp.messages)
    page.locator(f"form.retry:has(button[data-retry='{digest_id}']) input[name=csrf]").evaluate(
        "input => { input.value = 'forged' }"
    )
    with page.expect_response(f"**/deliveries/{digest_id}/retry") as answer:
        page.locator(f"button[data-retry='{digest_id}']").click()
    assert answer.value.status == 403
    assert "CSRF" in page.locator("body").inner_text()
    page.goto(dead_tab.url + "/deliveries")
    assert page.locator(f"#digests-dead tr[data-digest='{digest_id}']").count() == 1
    assert len(smtp.messages) == sent

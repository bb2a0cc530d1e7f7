"""The console's protections as a browser meets them: the login form when the console is
bound beyond loopback, and pages that load nothing from elsewhere and break no CSP rule."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser

from tests.support.service import RunningService
from tests.web.conftest import DemoState

from .conftest import Tab, copy_demo, open_tab, start_service

TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def guarded(
    demo_state: DemoState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service bound to every address, so the console asks for its token (each test
    has a browser context of its own: no login carries over)."""
    env = {"MONITOR_HEALTH_HOST": "0.0.0.0", "MONITOR_WEB_TOKEN": TOKEN}
    state = copy_demo(demo_state, tmp_path_factory.mktemp("guarded"))
    service = start_service(state, env=env)
    yield service
    assert service.stop() == 0


@pytest.fixture
def guarded_tab(chromium: Browser, guarded: RunningService) -> Iterator[Tab]:
    yield from open_tab(chromium, guarded.url)


def test_beyond_loopback_a_browser_logs_in_with_the_token(guarded_tab: Tab) -> None:
    page = guarded_tab.page
    page.goto(guarded_tab.url + "/feeds")
    assert urlsplit(page.url).path == "/login"  # sent to the form, with the page to return to
    assert page.locator("h1").inner_text() == "Log in"

    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    assert "not the console's token" in page.get_by_role("alert").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "monitor_session"]

    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(guarded_tab.url + "/feeds")
    assert page.locator("input[name=token]").count() == 0
    session = next(c for c in page.context.cookies() if c["name"] == "monitor_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert TOKEN not in session["value"]  # a keyed hash of the token, never the token
    # Scripts in the page cannot read the session (HttpOnly).
    assert "monitor_session" not in page.evaluate("document.cookie")
    assert not guarded_tab.seen.foreign


def test_without_the_token_a_page_shows_nothing_stored(guarded_tab: Tab) -> None:
    response = guarded_tab.page.goto(guarded_tab.url + "/stories/1")
    assert response is not None
    assert urlsplit(guarded_tab.page.url).path == "/login"
    assert guarded_tab.page.locator("main a[href^='/stories/']").count() == 0


def test_a_page_loads_only_from_its_own_origin_and_breaks_no_csp_rule(tab: Tab) -> None:
    page = tab.open("/login")
    # The stylesheet and htmx came from the console itself, and htmx is running.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("document.styleSheets.length") >= 1
    # An inline script is refused by the policy, and the refusal is what the page logs.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.body.append(s); }"
    )
    assert page.evaluate("window.injected === undefined")
    assert any("Content Security Policy" in e for e in tab.seen.errors)
    tab.seen.errors.clear()
    tab.seen.assert_clean()


def test_every_page_of_the_menu_loads_cleanly(tab: Tab) -> None:
    page = tab.open("/")
    links = page.locator("header nav a").evaluate_all("links => links.map(a => a.pathname)")
    assert len(links) >= 5, links
    for path in links:
        page.locator(f"header nav a[href='{path}']").click()
        page.wait_for_url(tab.url + path)
        assert page.locator("header nav a[aria-current=page]").get_attribute("href") == path
        assert page.locator("main h1").count() == 1, path
        # Every stylesheet and script came from the console itself (and was allowed to run).
        assert page.evaluate("typeof window.htmx") == "object", path
    tab.seen.assert_clean()  # no CSP refusal, no failed load, no other origin, on any page

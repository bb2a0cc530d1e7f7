"""Fixtures for the browser tests: one Chromium for the package, `monitor run` as a real
subprocess on a copy of the demo's database and rules, and a fresh browser context per test.

`served` is one service shared by the tests that only read; a test that changes the data (or
needs other settings) starts its own with `start_service`. The tests are plain sync functions:
Playwright's sync API runs its own event loop, which must not be nested in pytest-asyncio's
(that mode only wraps `async def` tests, so these are left alone).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import Watched, launch, watch
from tests.support.service import RunningService
from tests.web.conftest import DemoState


@dataclass
class Tab:
    """A page in a fresh context, on a console at `url`, with what it did recorded."""

    page: Page
    seen: Watched
    url: str

    def open(self, path: str) -> Page:
        response = self.page.goto(self.url + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        return self.page


def copy_demo(demo: DemoState, into: Path) -> DemoState:
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(demo.db, into / "console.db")
    shutil.copytree(demo.rules, into / "rules")
    return DemoState(db=into / "console.db", rules=into / "rules")


def start_service(state: DemoState, env: Mapping[str, str] | None = None) -> RunningService:
    # Bound to 0.0.0.0 the service logs that address; the browser reaches it on loopback.
    service = RunningService(state.rules, state.db, env=env)
    service.url = service.url.replace("://0.0.0.0:", "://127.0.0.1:")
    return service


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def served(
    demo_state: DemoState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """One `monitor run` for the tests that only read (on its own copy of the demo)."""
    state = copy_demo(demo_state, tmp_path_factory.mktemp("served"))
    service = start_service(state)
    yield service
    assert service.stop() == 0


def open_tab(chromium: Browser, url: str) -> Iterator[Tab]:
    context = chromium.new_context(locale="en-GB", timezone_id="UTC")
    page = context.new_page()
    yield Tab(page=page, seen=watch(page, url), url=url)
    context.close()


@pytest.fixture
def tab(chromium: Browser, served: RunningService) -> Iterator[Tab]:
    yield from open_tab(chromium, served.url)


@pytest.fixture
def chromium_nojs(chromium: Browser, served: RunningService) -> Iterator[Tab]:
    """A tab with JavaScript off: the pages must still work where that costs little."""
    context = chromium.new_context(java_script_enabled=False, timezone_id="UTC")
    page = context.new_page()
    yield Tab(page=page, seen=watch(page, served.url), url=served.url)
    context.close()

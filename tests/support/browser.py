"""A real Chromium for the console's browser tests, and what a page did that a test must check.

Playwright drives Debian's chromium (`/usr/bin/chromium`, which `.ci/run` installs); it never
downloads a browser of its own. The flags keep the browser from reaching out by itself (the
test network refuses anything but loopback, and a browser phoning home would count as a
request to another origin). Each `chromium.launch` gets a fresh temporary profile; each test
gets a fresh context (no cookies carried over).

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page()
        seen = watch(page, service.url)
        page.goto(service.url + "/")
        seen.assert_clean()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these the browser fetches updates, safe-browsing lists and sync data on its own,
    # which the closed test network refuses (and which would look like foreign requests).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_MS = 15_000  # upper bound for any one wait in a page; each ends on a condition


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        raise AssertionError(
            f"the browser tests need Debian's chromium at {CHROMIUM}: "
            "apt-get install chromium fonts-noto-cjk (.ci/run does it when missing)"
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(ARGS))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Watched:
    """What a page did while a test used it: errors it logged (a CSP violation is one),
    requests it made to any other origin, dialogs that opened (an injected script's alert)."""

    home: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # answers >= 400, to say which failed

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def on_request(self, request: Request) -> None:
        url = request.url
        if not url.startswith(("data:", "about:")) and origin(url) != self.home:
            self.foreign.append(url)

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert not self.errors, f"the page logged errors: {self.errors} (failed: {self.failed})"
        assert not self.foreign, f"the page asked another origin: {self.foreign}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"


def watch(page: Page, url: str) -> Watched:
    """Record `page`'s console errors, requests beyond `url`'s origin, and dialogs."""
    page.set_default_timeout(WAIT_MS)
    seen = Watched(home=origin(url))
    page.on("console", seen.on_console)
    page.on("pageerror", lambda error: seen.errors.append(f"pageerror: {error}"))
    page.on("request", seen.on_request)
    page.on("response", seen.on_response)
    page.on("dialog", seen.on_dialog)
    return seen

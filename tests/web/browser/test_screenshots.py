"""Full-page screenshots of every page, into `screenshots/` at the repository's root (kept
out of git; CI lists them). With MONITOR_SCREENSHOT_DOCS=1 the stories page is also written to
docs/console-stories.png, the picture the README shows (the top of that page)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .conftest import Tab

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "screenshots"
DOCS = REPO / "docs" / "console-stories.png"
WIDTH = 1280
PAGES = {
    "stories": "/?since=all",
    "stories-by-region": "/?since=all&region=TW",
    "search": "/search?q=台湾+OR+taiwan+OR+대만",
    "rules": "/rules",
    "playground": "/rules/playground?rule=korea-missiles&days=800",
    "feeds": "/feeds",
    "deliveries": "/deliveries",
}


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _shoot(tab: Tab, name: str) -> Path:
    tab.page.evaluate("document.fonts.ready")  # CJK faces loaded before the picture
    path = OUT / f"{name}.png"
    tab.page.screenshot(path=str(path), full_page=True)
    return path


def test_every_page_has_a_full_page_screenshot(tab: Tab) -> None:
    OUT.mkdir(exist_ok=True)
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    made = []
    for name, path in PAGES.items():
        tab.open(path)
        made.append(_shoot(tab, name))
    # A story told in several languages, and one of its reports.
    tab.open("/?since=all")
    tab.page.locator("#story-list li.story a.story-headline").first.click()
    tab.page.wait_for_url("**/stories/*")
    made.append(_shoot(tab, "story"))
    tab.page.locator("#story-reports tr[data-item-id]").first.wait_for()
    item = tab.page.locator("#story-reports tr[data-item-id]").first.get_attribute("data-item-id")
    tab.open(f"/items/{item}")
    made.append(_shoot(tab, "item"))

    for path in made:
        width, height = _png_size(path)
        assert width == WIDTH and height >= 300, (path, width, height)
    tab.seen.assert_clean()
    if os.environ.get("MONITOR_SCREENSHOT_DOCS") == "1":
        # The README's picture: the top of the stories page (the whole list would be a
        # scroll of several screens and megabytes in git).
        tab.open(PAGES["stories"])
        tab.page.evaluate("document.fonts.ready")
        tab.page.screenshot(path=str(DOCS))
        assert _png_size(DOCS) == (WIDTH, 900)

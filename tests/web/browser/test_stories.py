"""The stories page in a real browser: filters (a plain GET form that htmx enhances), the
chart, and one story's reports in several languages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Locator, Page

from .conftest import Tab


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _stories(page: Page) -> list[Locator]:
    return page.locator("#story-list > li.story").all()


def test_filtering_stories_by_language_then_region(tab: Tab) -> None:
    page = tab.open("/?since=all")
    everything = len(_stories(page))
    assert everything > 5

    page.fill("#filter-language", "ja")
    page.click("#story-filters button[type=submit]")
    page.wait_for_url("**language=ja**")  # htmx pushed the filtered address
    japanese = _stories(page)
    assert 0 < len(japanese) < everything
    for story in japanese:
        assert "ja" in story.locator(".story-languages").inner_text().split(" ", 1)[1]

    page.fill("#filter-region", "KP")
    page.click("#story-filters button[type=submit]")
    page.wait_for_url("**region=KP**")
    assert _query(page)["language"] == ["ja"]  # the filters combine
    both = _stories(page)
    assert 0 < len(both) <= len(japanese)
    for story in both:
        assert "KP" in story.locator(".story-regions").inner_text()
        assert story.locator("a.story-headline").get_attribute("lang") is not None
    tab.seen.assert_clean()


def test_the_filters_work_without_javascript(chromium_nojs: Tab) -> None:
    page = chromium_nojs.open("/?since=all")
    page.select_option("#filter-since", "all")
    page.fill("#filter-region", "KP")
    page.click("#story-filters button[type=submit]")
    page.wait_for_url("**region=KP**")
    stories = _stories(page)
    assert stories
    for story in stories:
        assert "KP" in story.locator(".story-regions").inner_text()


def test_a_rule_filter_draws_the_chart_of_its_matches(tab: Tab) -> None:
    page = tab.open("/?since=all")
    page.select_option("#filter-rule", "korea-missiles")  # a change submits through htmx
    page.wait_for_url("**rule=korea-missiles**")
    chart = page.locator("#story-chart svg")
    chart.wait_for()
    assert "korea-missiles" in page.locator("#story-chart figcaption").inner_text()
    assert page.locator("#chart-title").text_content()
    counts = [
        int(c or 0)
        for c in chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.dataset.count)")
    ]
    assert sum(counts) > 0
    tab.seen.assert_clean()


def test_a_story_shows_its_reports_in_several_languages(tab: Tab) -> None:
    page = tab.open("/?since=all")
    widest = max(
        _stories(page),
        key=lambda s: len(s.locator(".story-languages a").all()),
    )
    languages = widest.locator(".story-languages a").all_inner_texts()
    assert len(languages) >= 3, languages
    widest.locator("a.story-headline").click()
    page.wait_for_url("**/stories/*")
    assert page.locator("#story-title").is_visible()

    rows = page.locator("#story-reports tbody tr")
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.lang)"))
    assert len(shown) >= 3, shown
    for cell in page.locator("#story-reports td.report").all():
        assert cell.get_attribute("lang")  # each report drawn with its language's face
        assert cell.inner_text().strip()
    for link in page.locator("#story-reports a[href^='http']").all():
        assert set((link.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}
    tab.seen.assert_clean()

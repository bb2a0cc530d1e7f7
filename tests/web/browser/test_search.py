"""Search in a real browser: results update as you type (htmx), hits are highlighted, a
broken query shows its caret and the fixed one its hits; the item page from a result."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from .conftest import Tab


def test_typing_a_query_shows_its_hits_highlighted_in_several_languages(tab: Tab) -> None:
    page = tab.open("/search")
    page.fill("#search-q", "台湾 OR taiwan OR 대만")
    expect(page.locator("#search-list mark").first).to_be_visible()
    assert parse_qs(urlsplit(page.url).query)["q"] == ["台湾 OR taiwan OR 대만"]  # pushed
    results = page.locator("#search-list > li.search-result").all()
    assert len(results) >= 5
    languages = set()
    for result in results:
        marks = result.locator("mark").all_inner_texts()
        assert marks, result.inner_text()
        # Traditional spellings fold to the query's Simplified one
        assert {m.casefold() for m in marks} <= {"台湾", "臺灣", "台灣", "taiwan", "대만"}, marks
        languages.add(result.locator(".result-title a").get_attribute("lang"))
    assert {"en", "ja"} <= {lang.split("-")[0] for lang in languages if lang}, languages
    tab.seen.assert_clean()


def test_a_broken_query_shows_the_caret_then_the_fixed_one_its_hits(tab: Tab) -> None:
    page = tab.open("/search")
    page.fill("#search-q", "korea AND (missile")
    caret = page.locator("#search-caret")
    expect(caret).to_be_visible()
    assert "^" in caret.inner_text()
    assert page.locator("#search-error").get_attribute("role") == "alert"

    page.fill("#search-q", "korea AND (missile OR 미사일)")
    expect(page.locator("#search-list mark").first).to_be_visible()
    expect(caret).to_have_count(0)
    tab.seen.assert_clean()


def test_a_result_opens_its_item_with_hits_and_story(tab: Tab) -> None:
    page = tab.open("/search?q=missile")
    first = page.locator("#search-list > li.search-result").first
    item_id = first.get_attribute("data-item-id")
    first.locator(".result-title a").click()
    page.wait_for_url(f"**/items/{item_id}")
    assert page.locator("#item-title").inner_text()
    assert page.locator("#item-title mark, #item-summary mark").count() >= 1
    outlet = page.locator("#item-link")
    if outlet.count():
        assert set((outlet.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}
    page.locator("a#item-story").click()
    page.wait_for_url("**/stories/*")
    assert page.locator(f"#story-reports tr[data-item-id='{item_id}']").count() == 1
    tab.seen.assert_clean()


def test_searching_works_without_javascript(chromium_nojs: Tab) -> None:
    page = chromium_nojs.open("/search")
    page.fill("#search-q", "missile OR 미사일")
    page.click("#search-submit")  # a plain GET form: the whole page comes back
    page.wait_for_url("**/search?q=**")
    assert page.locator("#search-list mark").count() >= 2
    assert page.locator("#search-q").input_value() == "missile OR 미사일"

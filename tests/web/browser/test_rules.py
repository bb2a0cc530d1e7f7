"""The rules page and the playground in a real browser: a rule's "try" link, then a broken
query showing its caret and the fixed one its hits, as one types (htmx)."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import Tab

DAYS = "800"  # the demo's sample week lies in an earlier year


def test_the_rules_page_lists_every_rule_with_a_try_link(tab: Tab) -> None:
    page = tab.open("/rules")
    rows = page.locator("#rules-table tbody tr[id^='rule-']")
    assert rows.count() >= 10
    page.locator("a.rule-try[data-rule-id='korea-missiles']").click()
    page.wait_for_url("**/rules/playground?rule=korea-missiles")
    assert "korea" in page.locator("#playground-text").input_value().casefold()
    assert page.locator("#playground-compare").input_value() == "korea-missiles"
    expect(page.locator("#playground-status")).to_have_attribute("data-status", "ok")
    tab.seen.assert_clean()


def test_the_playground_shows_the_caret_then_the_hits_as_one_types(tab: Tab) -> None:
    page = tab.open("/rules/playground")
    page.fill("#playground-days", DAYS)
    page.fill("#playground-text", "(missile OR 미사일 AND")
    status = page.locator("#playground-status")
    expect(status).to_have_attribute("data-status", "error")
    caret = page.locator(".playground-caret").first
    expect(caret).to_be_visible()
    assert "^" in caret.inner_text()

    page.fill("#playground-text", "missile OR 미사일 OR ミサイル OR 导弹")
    expect(status).to_have_attribute("data-status", "ok")
    expect(page.locator("#playground-added mark").first).to_be_visible()
    assert int(page.locator("#playground-count-added").get_attribute("data-count") or 0) >= 3
    langs = page.locator("#playground-added li [lang]").evaluate_all(
        "els => els.map(e => e.lang.split('-')[0])"
    )
    assert {"en", "ko"} <= set(langs), langs
    assert page.locator(".playground-caret").count() == 0
    # Nothing is written: the rule to paste is shown instead.
    assert "missile" in page.locator("#playground-yaml").inner_text()
    tab.seen.assert_clean()


def test_comparing_with_a_rule_in_force_counts_added_and_removed(tab: Tab) -> None:
    page = tab.open(f"/rules/playground?rule=korea-missiles&days={DAYS}")
    both = page.locator("#playground-count-both")
    expect(both).to_be_visible()
    assert int(both.get_attribute("data-count") or 0) >= 1  # the rule's own text matches itself
    assert page.locator("#playground-count-added").get_attribute("data-count") == "0"
    tab.seen.assert_clean()

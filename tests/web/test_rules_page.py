"""The rules page and the rule playground, through the console's HTTP interface (in-process
client on a copy of the demo's database and rules)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations
from starlette.testclient import TestClient

from monitor.cli.main import main
from monitor.match.rules import load_rule_file
from monitor.match.ruleset import load_ruleset
from monitor.models import FeedState, Item
from monitor.store import Store, schema
from monitor.store.web_rules import prefilter
from monitor.web import playground_run
from monitor.web.playground import read_input
from monitor.web.playground_run import find_matches

from .conftest import DemoState, csrf_of, on_both

HX = {"hx-request": "true"}
DAYS = "400"  # the demo's sample week lies about a year back


def html(text: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(text)


def item_ids(doc: lxml.html.HtmlElement, group: str) -> list[int]:
    return [int(i) for i in doc.xpath(f'//ol[@id="playground-{group}"]/li/@data-item-id')]


def count(doc: lxml.html.HtmlElement, group: str) -> int:
    return int(doc.get_element_by_id(f"playground-count-{group}").get("data-count"))


def db_rows(db: Path | str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows as tuples, from a SQLite file or a PostgreSQL database."""
    with Store(db) as store:
        return [tuple(row.values()) for row in store._rows(sql, params)]


# --- /rules ---------------------------------------------------------------------------------


@on_both
def test_the_rules_page_lists_each_rule_in_force_with_its_week(
    client: TestClient, console_state: DemoState
) -> None:
    response = client.get("/rules")
    assert response.status_code == 200
    doc = html(response.text)
    assert doc.xpath("//h1/text()") == ["Rules"]
    rows = doc.xpath('//table[@id="rules-table"]//tr[@data-rule-id]')
    ruleset = load_ruleset(console_state.rules)
    assert [r.get("data-rule-id") for r in rows] == [r.id for r in ruleset.rules]
    stored = dict(db_rows(console_state.db, "SELECT rule_id, count(*) FROM matches GROUP BY 1"))
    lasts = dict(
        db_rows(console_state.db, "SELECT rule_id, max(matched_at) FROM matches GROUP BY 1")
    )
    for row in rows:
        rule = row.get("data-rule-id")
        days = [int(n) for n in row.xpath(".//svg/@data-days")[0].split(",")]
        assert len(days) == 7 and len(row.xpath(".//svg/rect")) == 7
        # The demo stored every match within the last minutes: all of them are this week's.
        assert sum(days) == int(row.get("data-week")) == stored.get(rule, 0), rule
        last = row.xpath('.//td[@class="rule-last"]/time/@datetime')
        assert last == ([lasts[rule]] if rule in lasts else []), rule
        assert row.xpath('.//a[@class="rule-try"]/@href') == [f"/rules/playground?rule={rule}"]
        assert row.xpath('.//td[contains(@class, "rule-file")]/text()')[0].startswith(
            "rules/alerts/"
        )
    never = [r for r in rows if r.get("data-rule-id") not in stored]
    assert never, "the demo has rules that never matched"
    assert "never" in never[0].xpath('string(.//td[@class="rule-last"])')


@on_both
def test_the_rules_page_sorts_by_a_get_parameter(client: TestClient) -> None:
    def order(sort: str) -> list[tuple[str, int]]:
        doc = html(client.get("/rules", params={"sort": sort}).text)
        rows = doc.xpath("//tr[@data-rule-id]")
        return [(r.get("data-rule-id"), int(r.get("data-week"))) for r in rows]

    by_id = order("id")
    assert [r for r, _ in by_id] == sorted(r for r, _ in by_id)
    busiest = order("week")
    assert [w for _, w in busiest] == sorted((w for _, w in busiest), reverse=True)
    assert busiest[0][1] > busiest[-1][1]
    assert order("file") != by_id  # the files' own order
    assert order("nonsense") == order("file")
    severities = html(client.get("/rules?sort=severity").text).xpath(
        '//tr[@data-rule-id]/td/span[contains(@class, "badge")]/text()'
    )
    ranks = ["info", "low", "medium", "high", "critical"]
    assert [ranks.index(s) for s in severities] == sorted(
        (ranks.index(s) for s in severities), reverse=True
    )


BROKEN = """rules:
  - id: broken-one
    query: 'taiwan AND (drill'
"""


@on_both
def test_a_broken_rule_file_is_a_banner_and_the_rest_still_shows(
    client: TestClient, console_state: DemoState
) -> None:
    (console_state.rules / "alerts" / "zz-broken.yaml").write_text(BROKEN, encoding="utf-8")
    response = client.get("/rules")
    assert response.status_code == 200
    doc = html(response.text)
    banner = doc.get_element_by_id("rules-error")
    items = banner.xpath('.//li[@class="rules-error-item"]')
    assert len(items) == 1
    assert items[0].get("data-file") == "rules/alerts/zz-broken.yaml"
    assert items[0].xpath("string(code)") == "rules/alerts/zz-broken.yaml:3:24"
    assert "missing ')'" in items[0].text_content()
    assert "^" not in items[0].text_content()  # one line: the place is in file:line:col
    shown = doc.xpath("//tr[@data-rule-id]/@data-rule-id")
    assert "korea-missiles" in shown and "broken-one" not in shown
    # The playground still works, saying why regions are not checked.
    playground = client.get("/rules/playground", params={"text": "taiwan", "days": DAYS})
    assert playground.status_code == 200
    assert "error(s) in the rule files" in playground.text


# --- the playground -----------------------------------------------------------------------


@on_both
def test_try_prefills_the_playground_with_the_rule_and_compares_with_it(
    client: TestClient, console_state: DemoState
) -> None:
    response = client.get("/rules/playground", params={"rule": "korea-missiles", "days": DAYS})
    assert response.status_code == 200
    doc = html(response.text)
    text = doc.get_element_by_id("playground-text").text_content()
    assert text.startswith("rules:\n  - id: korea-missiles\n")
    selected = doc.xpath('//select[@id="playground-compare"]/option[@selected]/@value')
    assert selected == ["korea-missiles"]
    assert doc.get_element_by_id("playground-status").get("data-status") == "ok"
    stored = db_rows(
        console_state.db, "SELECT count(*) FROM matches WHERE rule_id = 'korea-missiles'"
    )[0][0]
    # The rule against itself: everything in both, nothing added or removed.
    assert (count(doc, "added"), count(doc, "removed"), count(doc, "both")) == (0, 0, stored)
    assert stored and len(item_ids(doc, "both")) == stored
    assert doc.xpath('//ol[@id="playground-both"]//mark')
    # Reports in their language; outlets linked without a referrer.
    langs = set(doc.xpath('//ol[@id="playground-both"]/li/div/@lang'))
    assert {"en", "ja", "ko"} <= langs
    outlets = doc.xpath('//ol[@id="playground-both"]//p[@class="playground-title"]/a')
    assert len(outlets) == stored
    assert all(a.get("rel") == "noopener noreferrer" for a in outlets)
    pages = doc.xpath('//ol[@id="playground-both"]//a[@class="playground-item-link"]/@href')
    assert pages == [f"/items/{i}" for i in item_ids(doc, "both")]


@on_both
def test_the_playground_agrees_with_rules_test_since(
    client: TestClient, console_state: DemoState
) -> None:
    query = '(missile* OR 미사일 OR ミサイル OR 导弹) AND NOT "cruise missile"'
    rule_file = console_state.rules / "alerts" / "zz-try.yaml"
    rule_file.write_text(f"rules:\n  - id: try-me\n    query: '{query}'\n", encoding="utf-8")
    args = ["--rules", str(console_state.rules), "--db", str(console_state.db)]
    args += ["rules", "test", "--since", f"{DAYS}d", "--rule", "try-me", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    keys = [(r["feed"], r["guid"]) for r in map(json.loads, result.stdout.splitlines())]
    ids = {
        db_rows(console_state.db, "SELECT id FROM items WHERE feed_id = ? AND guid = ?", *k)[0][0]
        for k in keys
    }
    assert len(ids) >= 4
    doc = html(client.get("/rules/playground", params={"text": query, "days": DAYS}).text)
    assert count(doc, "added") == len(ids)
    assert set(item_ids(doc, "added")) == ids


def test_a_query_is_compared_with_a_rule_in_force(client: TestClient) -> None:
    params = {"text": "korea*", "days": DAYS, "compare": "korea-missiles"}
    doc = html(client.get("/rules/playground/check", params=params, headers=HX).text)
    assert doc.get("id") == "playground-result"  # a fragment for htmx, no page around it
    assert not doc.xpath("//h1")
    added, removed, both = item_ids(doc, "added"), item_ids(doc, "removed"), item_ids(doc, "both")
    assert (count(doc, "added"), count(doc, "removed"), count(doc, "both")) == (
        len(added),
        len(removed),
        len(both),
    )
    assert added and removed and both
    assert not (set(added) & set(removed)) and not (set(both) & set(added + removed))
    # The YAML to paste keeps the compared rule's id: it replaces that rule.
    yaml = doc.get_element_by_id("playground-yaml").text_content()
    assert yaml.startswith("rules:\n  - id: korea-missiles\n")


def test_the_yaml_shown_for_a_query_loads_back_as_the_same_rule(
    client: TestClient, tmp_path: Path
) -> None:
    query = """taiwan AND (drill* OR "live-fire") AND NOT film's"""
    doc = html(client.get("/rules/playground/check", params={"text": query}, headers=HX).text)
    assert doc.get_element_by_id("playground-normalised").text_content() == (
        'taiwan AND (drill* OR "live-fire") AND NOT film\'s'
    )
    path = tmp_path / "pasted.yaml"
    path.write_text(doc.get_element_by_id("playground-yaml").text_content(), encoding="utf-8")
    rules, errors = load_rule_file(path)
    assert errors == [] and [r.query for r in rules] == [query]


def test_a_query_error_shows_a_caret_under_its_column(client: TestClient) -> None:
    response = client.get(
        "/rules/playground/check", params={"text": "taiwan AND (drill OR"}, headers=HX
    )
    doc = html(response.text)
    status = doc.get_element_by_id("playground-status")
    assert status.get("data-status") == "error"
    problem = status.xpath('.//div[@class="playground-problem"]')[0]
    assert problem.get("data-column") == "21"
    caret = problem.xpath('.//pre[@class="playground-caret"]')[0].text_content()
    line, marker = caret.split("\n")
    assert line == "taiwan AND (drill OR" and marker == " " * 20 + "^"
    assert not doc.xpath('//*[@id="playground-trial"]')  # nothing tried


def test_a_rule_in_yaml_is_read_with_its_errors_at_line_and_column(client: TestClient) -> None:
    text = "- id: mine\n  severity: urgent\n  query: taiwan AND region:ZZ\n"
    doc = html(client.get("/rules/playground/check", params={"text": text}, headers=HX).text)
    assert doc.get("data-kind") == "rule"
    problems = {
        (p.get("data-line"), p.get("data-column")): p.text_content()
        for p in doc.xpath('//div[@class="playground-problem"]')
    }
    assert set(problems) == {("2", "13"), ("3", "21")}
    assert "urgent" in problems[("2", "13")] and "ZZ" in problems[("3", "21")]
    caret = doc.xpath('//div[@data-line="3"]/pre')[0].text_content().split("\n")
    assert caret == ["  query: taiwan AND region:ZZ", " " * 20 + "^"]


def test_a_good_rule_in_yaml_shows_its_fields_failing_examples_and_matches(
    client: TestClient,
) -> None:
    text = (
        "id: drills\ntitle: Drills\nseverity: high\nquery: drill* AND (taiwan OR 台湾)\n"
        "tests:\n  match: [PLA drills near Taiwan, nothing here]\n"
    )
    params = {"text": text, "days": DAYS}
    doc = html(client.get("/rules/playground/check", params=params, headers=HX).text)
    assert doc.get_element_by_id("playground-status").get("data-status") == "ok"
    fields = [t.strip() for t in doc.xpath('//dl[@class="playground-fields"]/dd//text()')]
    assert fields[:3] == ["drills", "Drills", "high"]
    warnings = doc.xpath('//div[contains(@class, "playground-warning")]')
    assert ["nothing here" in w.text_content() for w in warnings] == [True]
    assert warnings[0].get("data-line") == "6"
    yaml = doc.get_element_by_id("playground-yaml").text_content()
    assert yaml.startswith("rules:\n  - id: drills\n    title: Drills\n")
    assert count(doc, "added") >= 1
    shown = doc.xpath('//ol[@id="playground-added"]/li')
    assert shown and all(li.xpath(".//mark") for li in shown)


def test_the_playground_works_without_javascript_and_only_reads(
    client: TestClient, console_state: DemoState
) -> None:
    before = {p: p.stat().st_mtime_ns for p in console_state.rules.rglob("*")}
    items = db_rows(console_state.db, "SELECT count(*), max(id) FROM items")
    doc = html(client.get("/rules/playground").text)
    assert doc.xpath("//h1/text()") == ["Rule playground"]
    form = doc.get_element_by_id("playground-form")
    assert (form.get("method"), form.get("action")) == ("get", "/rules/playground")
    assert sorted(form.xpath(".//*[@name]/@name")) == ["compare", "days", "text"]
    assert doc.get_element_by_id("playground-status").get("data-status") == "empty"
    page = client.get("/rules/playground", params={"text": "taiwan", "days": "abc"})
    assert "days must be a whole number" in page.text
    assert html(page.text).get_element_by_id("playground-trial").get("data-days") == "7"
    # Only GET: even with its CSRF token, nothing can be sent to change anything.
    post = client.post("/rules/playground/check", data={"text": "x", "csrf": csrf_of(client)})
    assert post.status_code == 405
    assert {p: p.stat().st_mtime_ns for p in console_state.rules.rglob("*")} == before
    assert db_rows(console_state.db, "SELECT count(*), max(id) FROM items") == items


def test_an_empty_window_says_what_to_do(client: TestClient) -> None:
    doc = html(client.get("/rules/playground", params={"text": "taiwan", "days": "1"}).text)
    # The demo's items are a year old, bar the one it stamps with the time it polled.
    assert int(doc.get_element_by_id("playground-trial").get("data-window")) <= 1
    assert doc.get_element_by_id("playground-none") is not None or doc.xpath(
        '//*[@id="playground-no-items"]'
    )


# --- narrowing by the full-text index never loses a match --------------------------------


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("UN", "북한UN 대표부 성명"),  # Latin glued to Hangul: one token for the index
        ("안보리", "UN안보리 긴급회의"),
        ("대사 OR envoy", "駐日대사 발언"),
        ("drill* NEAR/2 taiwan", "Drills near Taiwan"),
        ('"Taiwan Strait" AND NOT film', "台湾海峡 Taiwan Strait tension"),
    ],
)
def test_narrowing_finds_what_the_matcher_finds(
    db_target: Path | str, query: str, title: str
) -> None:
    now = datetime.now(UTC)
    item = Item(
        feed_id="f", guid="g", link=None, title=title, summary="", html="", author=None,
        lang=None, published=now, first_seen=now, content_hash="h",
    )  # fmt: skip
    with Store(db_target) as store:
        store.save_items("f", [item], FeedState("f", "https://f.example/"))
        rule = read_input(query, None).rule
        assert rule is not None
        found = find_matches(store, rule, now - timedelta(days=1), None, {})
        assert prefilter(rule, pg=store.backend == "postgresql") is not None
    assert len(found.matches) == 1, (query, title)


def test_capped_rules_are_compared_over_the_items_both_were_tried_on(
    client: TestClient, console_state: DemoState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A narrower version of a rule finds nothing the rule does not: with each read capped
    # (the newest few candidates of its own), it reaches further back than the rule, and
    # only the stretch both covered may be compared.
    monkeypatch.setattr(playground_run, "MAX_SCAN", 13)
    rule = {r.id: r for r in load_ruleset(console_state.rules).rules}["korea-missiles"]
    narrower = f"({rule.query}) AND (missile* OR 미사일 OR ミサイル OR 导弹 OR 飛彈)"
    params = {"text": narrower, "days": DAYS, "compare": "korea-missiles"}
    doc = html(client.get("/rules/playground/check", params=params, headers=HX).text)
    capped = doc.get_element_by_id("playground-capped")
    assert capped.get("data-reached")
    assert count(doc, "added") == 0
    assert count(doc, "both") >= 1


def test_items_with_korean_text_are_kept_listed_as_they_change(tmp_path: Path) -> None:
    now = datetime.now(UTC)

    def item(guid: str, title: str, digest: str) -> Item:
        return Item(
            feed_id="f", guid=guid, link=None, title=title, summary="", html="", author=None,
            lang=None, published=now, first_seen=now, content_hash=digest,
        )  # fmt: skip

    state = FeedState("f", "https://f.example/")
    with Store(tmp_path / "k.db") as store:
        store.save_items("f", [item("a", "북한 발사", "1"), item("b", "Drills", "2")], state)
        store.save_items("f", [item("a", "Launch", "3"), item("b", "ﾡ 반도", "4")], state)
    listed = db_rows(
        tmp_path / "k.db", "SELECT guid FROM items JOIN item_hangul ON item_id = id ORDER BY 1"
    )
    assert listed == [("b",)]  # edited into Korean, out of it


def test_the_migration_lists_the_korean_items_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Migrations("monitor")
    for name in schema.MIGRATION_NAMES[: schema.MIGRATION_NAMES.index("m013_item_hangul")]:
        old()(getattr(schema, name))
    db = Database(sqlite3.connect(path))
    old.apply(db)
    for guid, title in (("ko", "UN안보리 회의"), ("en", "UN Security Council")):
        db.execute(
            "INSERT INTO items (feed_id, guid, title, summary, html, published, first_seen,"
            " content_hash) VALUES ('f', ?, ?, '', '', '2026-12-01T00:00:00.000000+00:00',"
            " '2026-12-01T00:00:00.000000+00:00', 'h')",
            (guid, title),
        )
    db.conn.commit()
    db.conn.close()
    Store(path).close()  # opening migrates
    listed = db_rows(path, "SELECT guid FROM items JOIN item_hangul ON item_id = id")
    assert listed == [("ko",)]


def test_without_rules_the_page_says_where_to_write_one(
    client: TestClient, console_state: DemoState
) -> None:
    for path in (console_state.rules / "alerts").glob("*.yaml"):
        path.unlink()
    doc = html(client.get("/rules").text)
    assert not doc.xpath("//tr[@data-rule-id]")
    assert "rules/alerts/" in doc.get_element_by_id("rules-empty").text_content()

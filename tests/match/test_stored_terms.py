"""Ingest stores a match's terms, not their positions; `items show` and the console find the
positions again from the terms (`match.explain.hits_of_terms`). Checked: the same hits over
the shipped rules' own examples and the story evaluation set (four languages), no position
worked out while ingesting, and rows of the older form (positions kept) still read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.ingest.ingestion import ingest
from monitor.match import compiler
from monitor.match.examples import example_item
from monitor.match.explain import hits_of_terms
from monitor.match.rule import Hit
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import Feed, Item
from monitor.store import Store
from monitor.store.details import item_detail
from monitor.store.outbox import Outbox
from tests.store.test_store import T0, make_item, state

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "tests" / "story" / "eval" / "reports.jsonl"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(ROOT / "rules")


def corpus(ruleset: RuleSet) -> Iterator[tuple[Item, Feed | None]]:
    """Every example of the shipped rules, then the evaluation set's reports."""
    for rule in ruleset.rules:
        for example in (*rule.match_examples, *rule.no_match_examples):
            yield example_item(example)
    for line in REPORTS.read_text(encoding="utf-8").splitlines():
        report = json.loads(line)
        published = datetime.fromisoformat(report["published"])
        yield make_item(report["id"], report["title"], report["summary"], lang=report["lang"],
                        published=published), None  # fmt: skip


def test_the_stored_terms_are_the_hits_terms_and_find_the_same_hits(ruleset: RuleSet) -> None:
    checked, scripts = 0, set()
    for item, feed in corpus(ruleset):
        tagged, matches = ruleset.enrich(item, feed)
        for match in matches:
            terms = match.terms
            assert len(set(terms)) == len(terms), match.rule_id
            assert set(terms) == {h.term for h in match.hits}, (match.rule_id, item.title)
            assert hits_of_terms(terms, tagged) == match.hits, (match.rule_id, item.title)
            checked += 1
            scripts.add(tagged.lang)
    assert checked >= 150 and {"en", "ja", "zh", "ko"} <= scripts


def test_a_matchs_terms_are_in_its_rules_order_whatever_order_the_scan_knows_them() -> None:
    """Only the terms whose signal the scan found are looked at; they still come in the
    rule's order (its words, then its phrases: cheapest first, as it is evaluated). Here
    the rule's first terms were compiled after its later ones (by another rule; a phrase's
    word, a prefix, a CJK term), so that the scan numbers them the other way."""
    from monitor.match.engine import Matcher
    from monitor.match.query import parse_query
    from monitor.match.rule import Rule

    queries = ["zulu OR yankee OR 海峡", '"strait patrol" OR drill*', "alpha OR 海峡 OR "
               'zulu OR "strait patrol" OR yankee OR drill* OR beta']  # fmt: skip
    rules = [
        Rule(id=f"r{i}", title="t", query=q, tree=parse_query(q)) for i, q in enumerate(queries)
    ]
    item = make_item("a", "Beta yankee drills", "zulu and alpha near the 海峡; strait patrol")
    terms = {m.rule_id: m.terms for m in Matcher.compile(rules).match(item)}
    assert terms["r2"] == ("alpha", "海峡", "zulu", "yankee", "drill*", "beta", '"strait patrol"')
    assert terms["r0"] == ("zulu", "yankee", "海峡")


def test_a_term_in_no_shape_a_rule_writes_is_left_out() -> None:
    item = make_item("a", "PLA drills", "near Taiwan")
    assert hits_of_terms(["drill*", "(", "a AND b", "taiwan"], item) == (
        Hit("drill*", "title", 4, 9),
        Hit("taiwan", "summary", 5, 11),
    )
    assert hits_of_terms([], item) == () and hits_of_terms(["absent"], item) == ()


BODY = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>PLA drills near the Taiwan Strait</title><guid>a</guid>
<description>China's coast guard ships joined the exercise.</description></item>
<item><title>North Korea fires a ballistic missile</title><guid>b</guid>
<description>Japan's defence ministry said it fell outside the EEZ.</description></item>
</channel></rss>"""


def test_ingest_stores_terms_without_working_out_a_position(
    ruleset: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_positions(self: compiler._Compiled, ctx: compiler._Ctx) -> tuple[Hit, ...]:
        raise AssertionError(f"positions worked out for {self.rule.id} while ingesting")

    feed = Feed(id="asia", url="https://asia.example.org/feed.xml")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    monkeypatch.setattr(compiler._Compiled, "hits", no_positions)
    enriched = ingest(feed, BODY, {"content-type": "application/rss+xml"}, feed.url, now, ruleset)
    monkeypatch.undo()
    assert not isinstance(enriched, str)
    rows = {item.guid: rows for item, rows, _, _ in enriched}
    assert {rule for rows_ in rows.values() for rule, _, _ in rows_} >= {"korea-missiles"}
    for item, found, _, _ in enriched:
        expected = {m.rule_id: list(m.terms) for m in ruleset.enrich(item, feed)[1]}
        assert {rule: json.loads(terms) for rule, _, terms in found} == expected
        assert all(json.loads(terms) for _, _, terms in found)


@pytest.fixture
def store(db_target: Path | str) -> Iterator[Store]:
    with Store(db_target) as s:
        yield s


def test_a_stored_match_shows_its_hits_and_gives_its_terms(store: Store, ruleset: RuleSet) -> None:
    item = make_item("a", "PLA drills near the Taiwan Strait", "Coast guard ships joined.")
    matches = ruleset.enrich(item, None)[1]
    assert matches
    store.save_items("asia", [item], state(), lambda i: ruleset.enrich(i, None))
    [stored] = store.get_items([1])
    detail = item_detail(store, stored.id)
    assert detail is not None
    assert {m.rule_id: m.hits for m in detail.matches} == {m.rule_id: m.hits for m in matches}
    pending = Outbox(store).pending("desk", T0 - timedelta(days=3650))
    assert {p.rule_id: p.terms for p in pending} == {m.rule_id: m.terms for m in matches}


def test_a_row_that_kept_positions_is_read_as_it_was(store: Store) -> None:
    item = make_item("a", "drills", "drills again")
    store.save_items("asia", [item], state(), lambda i: (i, []))
    [stored] = store.get_items([1])
    old = [{"term": "drill*", "field": "title", "start": 0, "end": 6},
           {"term": "drill*", "field": "summary", "start": 0, "end": 6}]  # fmt: skip
    with store._write() as conn:
        conn.execute(
            "INSERT INTO matches (item_id, rule_id, score, hits, matched_at, history)"
            " VALUES (?, 'r', 0, ?, ?, 0)",
            (stored.id, json.dumps(old), T0.isoformat()),
        )
    detail = item_detail(store, stored.id)
    assert detail is not None
    assert detail.matches[0].hits == (
        Hit("drill*", "title", 0, 6),
        Hit("drill*", "summary", 0, 6),
    )
    [pending] = Outbox(store).pending("desk", T0 - timedelta(days=1))
    assert pending.terms == ("drill*",)

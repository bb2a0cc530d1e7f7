"""Entity tagging through the real rule set (one scan shared with regions and rules): the
headline table, the regions entities imply and their setting, ambiguity, and storage of the
entities with the item (including a database made before entities existed).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor.errors import ConfigErrors
from monitor.match.regions import load_gazetteer
from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.models import EntityTag, FeedState, Item
from monitor.store import Store, schema

HEADLINES = Path(__file__).with_name("entity_headlines.yaml")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return RuleSet.compile((), load_gazetteer())


def ids(ruleset: RuleSet, title: str, summary: str = "") -> list[str]:
    return sorted({tag.id for tag in ruleset.tag_all(title, summary)[1]})


def headline_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = YAML(typ="safe", pure=True).load(HEADLINES.read_text("utf-8"))[
        "headlines"
    ]
    return rows


def test_headline_table_tags_every_expected_entity_and_nothing_else(ruleset: RuleSet) -> None:
    rows = headline_rows()
    assert len(rows) == 58
    wrong = [
        (row["title"], ids(ruleset, row["title"]), sorted(row["ids"]))
        for row in rows
        if ids(ruleset, row["title"]) != sorted(row["ids"])
    ]
    assert wrong == []  # every row met: no known misses, no wrong tags
    traps = [row for row in rows if not row["ids"]]
    assert len(traps) == 4 and all(ids(ruleset, row["title"]) == [] for row in traps)


def test_headline_table_recall_per_kind(ruleset: RuleSet) -> None:
    # The README reports these figures: every kind found in full.
    expected: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for row in headline_rows():
        tags = {tag.id: tag.kind for tag in ruleset.tag_all(row["title"], "")[1]}
        for ident in row["ids"]:
            kind = ruleset.tagger.entities[ident].kind
            expected[kind] += 1
            found[kind] += ident in tags
    assert expected == {"person": 33, "org": 34, "place": 48}
    assert found == expected


def test_entities_carry_kind_field_and_offsets(ruleset: RuleSet) -> None:
    regions, tags = ruleset.tag_all("Talks in Busan", "Xi tells Trump")
    assert tags == (
        EntityTag("kr-busan", "place", "title", 9, 14),
        EntityTag("xi-jinping", "person", "summary", 0, 2),
        EntityTag("donald-trump", "person", "summary", 9, 14),
    )
    assert regions == ("CN", "KR", "US")


@pytest.mark.parametrize(
    ("title", "regions"),
    [
        ("Xi tells Trump a deal is near", ("CN", "US")),  # people imply their countries
        ("Takaichi visits Yonaguni", ("JP",)),
        ("Guterres warns of famine", ()),  # the UN's secretary-general has no country
        ("UN Security Council meets at noon", ()),  # the UN implies none
        ("Nvidia shares rise", ()),  # organisations do not by default
        ("China Airlines adds winter flights", ("TW",)),  # named after a country: not CN
        ("Typhoon nears Uotsuri Island", ("ECS", "JP", "SENKAKU")),  # a disputed place
    ],
)
def test_implied_regions(ruleset: RuleSet, title: str, regions: tuple[str, ...]) -> None:
    assert ruleset.tag_all(title, "")[0] == regions


def test_region_rule_matches_on_an_implied_region(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    (alerts / "a.yaml").write_text(
        "rules:\n  - id: china-us\n    query: 'region:CN AND region:US'\n"
        "    tests: {match: ['Xi tells Trump a deal is near'], no_match: ['Xi speaks']}\n"
    )
    ruleset = load_ruleset(tmp_path)
    item = make_item("g1", "Xi tells Trump a deal is near")
    tagged, matches = ruleset.enrich(item, None)
    assert [m.rule_id for m in matches] == ["china-us"]
    assert [t.id for t in tagged.entities] == ["xi-jinping", "donald-trump"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("France opens ocean summit in Nice", ["fr-nice"]),
        ("Nice weather lifts mobile phone sales", []),  # common words: only in context
        ("Nice police chief resigns, France reacts", ["fr-nice"]),
        ("Hurricane nears Mobile, Alabama", ["us-alabama", "us-mobile"]),
        ("Mobile phones sell out in a day", []),  # capitalised, but no context word
        ("Reading festival sells out", []),
        ("Kyoto Protocol talks stall", []),  # a blocker longer than the name
        ("China Airlines adds winter flights", ["china-airlines"]),
    ],
)
def test_ambiguous_names_tag_only_in_context(
    ruleset: RuleSet, title: str, expected: list[str]
) -> None:
    assert ids(ruleset, title) == expected


def write_entities(tmp_path: Path, text: str) -> Path:
    (tmp_path / "entities.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_implied_regions_setting_turns_a_kind_on_or_off(tmp_path: Path) -> None:
    rules = write_entities(tmp_path, "implied_regions: {person: false, org: true}\n")
    ruleset = load_ruleset(rules)
    assert ruleset.tag_all("Xi tells Trump a deal is near", "")[0] == ()
    assert ruleset.tag_all("Nvidia shares rise", "")[0] == ("US",)
    assert ruleset.tag_all("Typhoon nears Fujian", "")[0] == ("CN",)  # place: still the default


def test_implied_regions_setting_refuses_a_bad_value(tmp_path: Path) -> None:
    rules = write_entities(tmp_path, "implied_regions: {person: maybe}\n")
    with pytest.raises(ConfigErrors) as caught:
        load_ruleset(rules)
    text = str(caught.value)
    assert "entities.yaml:1" in text and "person must be true or false" in text


def test_own_entities_from_rules_entities_yaml(tmp_path: Path) -> None:
    rules = write_entities(
        tmp_path,
        "entities:\n  acme-shipyard:\n    kind: org\n    country: KR\n"
        "    names: {en: [Acme Shipyard], ko: [애크미조선]}\n",
    )
    ruleset = load_ruleset(rules)
    assert ids(ruleset, "Fire at Acme Shipyard") == ["acme-shipyard"]
    assert ids(ruleset, "애크미조선 화재") == ["acme-shipyard"]


def test_ruleset_with_entities_survives_pickling(tmp_path: Path) -> None:
    import pickle

    rules = write_entities(tmp_path, "implied_regions: {org: true}\n")
    copy = pickle.loads(pickle.dumps(load_ruleset(rules)))
    assert copy.tag_all("Nvidia shares rise", "")[0] == ("US",)


# --- storage ---------------------------------------------------------------------------------


def make_item(guid: str, title: str, summary: str = "") -> Item:
    return Item(
        "asia", guid, None, title, summary, summary, None, "en", T0, T0, f"{title}|{summary}"
    )


def entity_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            'SELECT item_id, entity_id, kind, field, start, "end" FROM item_entities'
            " ORDER BY item_id, field, start"
        ).fetchall()


def test_entities_are_stored_with_the_item_and_follow_its_edits(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    path = tmp_path / "m.db"
    store = Store(path)
    state = FeedState("asia", "http://x/")

    def enrich(item: Item) -> Any:
        return ruleset.enrich(item, None)

    store.save_items("asia", [make_item("g1", "Xi tells Trump", "Talks in Busan")], state, enrich)
    [stored] = store.search(None)
    assert [t.id for t in stored.item.entities] == ["xi-jinping", "donald-trump", "kr-busan"]
    assert stored.item.regions == ("CN", "KR", "US")
    assert entity_rows(path) == [
        (stored.id, "kr-busan", "place", "summary", 9, 14),
        (stored.id, "xi-jinping", "person", "title", 0, 2),
        (stored.id, "donald-trump", "person", "title", 9, 14),
    ]
    store.save_items("asia", [make_item("g1", "Macron meets Lee Jae-myung")], state, enrich)
    assert [r[1] for r in entity_rows(path)] == ["emmanuel-macron", "lee-jae-myung"]
    store.close()


def test_migration_adds_entities_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Migrations("monitor")
    for name in schema.MIGRATION_NAMES[: schema.MIGRATION_NAMES.index("m009_item_entities")]:
        old()(getattr(schema, name))
    db = Database(sqlite3.connect(path))
    old.apply(db)
    db.execute(
        "INSERT INTO items (feed_id, guid, title, summary, html, published, first_seen,"
        " content_hash, regions) VALUES ('asia', 'g0', 'Xi tells Trump', '', '',"
        " '2026-12-01T00:00:00.000000+00:00', '2026-12-01T00:00:00.000000+00:00', 'h', '[]')"
    )
    db.conn.commit()
    db.conn.close()

    store = Store(path)
    [kept] = store.search(None)
    assert kept.item.title == "Xi tells Trump" and kept.item.entities == ()
    ruleset = RuleSet.compile((), load_gazetteer())
    state = FeedState("asia", "http://x/")
    store.save_items(
        "asia", [make_item("g1", "Wang Yi in Paris")], state, lambda i: ruleset.enrich(i, None)
    )
    assert [r[1] for r in entity_rows(path)] == ["wang-yi", "fr-paris"]
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT entities FROM items WHERE guid = 'g1'").fetchone()[0]
    assert json.loads(stored)[0] == {
        "id": "wang-yi", "kind": "person", "field": "title", "start": 0, "end": 7
    }  # fmt: skip
    store.close()


def test_the_service_reloads_the_rules_when_entities_yaml_changes(tmp_path: Path) -> None:
    from monitor.match.ruleset import rule_paths
    from monitor.service.watched import Watched

    (tmp_path / "alerts").mkdir()
    watched = Watched("rules", rule_paths(tmp_path), lambda: load_ruleset(tmp_path))
    assert ids(watched.value, "Fire at Acme Yard") == []
    write_entities(tmp_path, "entities:\n  acme-yard: {kind: org, names: {en: [Acme Yard]}}\n")
    saved = time.time() - 2  # left alone since: a tick takes an edit once it has settled
    os.utime(tmp_path / "entities.yaml", (saved, saved))
    assert watched.refresh()
    assert ids(watched.value, "Fire at Acme Yard") == ["acme-yard"]

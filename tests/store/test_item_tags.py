"""An item's rows beside it: its regions (`item_regions`), entities (`item_entities`) and
whether it has Korean text (`item_hangul`, what the console's rule playground always reads).
Written by the writer for new items, by triggers for edits, on both backends. Expected: the
rows say what the item's own columns say, once each; Hangul anywhere in the title or the
summary (syllables, jamo, compatibility or half-width jamo) lists the item, Chinese and
Japanese do not; an edit moves an item in or out and rewrites its tags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.models import EntityTag
from monitor.store import Store
from tests.store.test_store import make_item, state

ITEMS = {
    "title": ("북한 미사일 발사", "Seoul says"),
    "summary": ("Launch", "합참은 오늘 아침 발표했다."),
    "jamo": ("ᄀ", ""),  # U+1100
    "compat": ("Mark ㄱ", ""),  # U+3131
    "halfwidth": ("ﾡ", ""),  # U+FFA1
    "ja": ("北朝鮮が弾道ミサイルを発射", "防衛省"),
    "zh": ("朝鲜发射弹道导弹", "国防部"),
    "en": ("North Korea fires a missile", "“Again”, said Seoul — twice."),
}
KOREAN = ["compat", "halfwidth", "jamo", "summary", "title"]


def _rows(store: Store, sql: str) -> list[Any]:
    with store._write() as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def _listed(store: Store) -> list[str]:
    rows = _rows(store, "SELECT guid FROM items JOIN item_hangul ON item_id = id ORDER BY guid")
    return [guid for (guid,) in rows]


def _tags(store: Store) -> tuple[set[Any], set[Any], set[Any], set[Any]]:
    """The rows of item_regions and item_entities, and what the items' columns say."""
    regions = set(
        _rows(store, "SELECT i.guid, r.code FROM item_regions r JOIN items i ON i.id = r.item_id")
    )
    entities = set(
        _rows(
            store,
            'SELECT i.guid, e.entity_id, e.kind, e.field, e.start, e."end"'
            " FROM item_entities e JOIN items i ON i.id = e.item_id",
        )
    )
    columns = _rows(store, "SELECT guid, regions, entities FROM items")
    said_regions = {(g, code) for g, r, _ in columns for code in json.loads(r)}
    said = {(g, *e.values()) for g, _, es in columns for e in json.loads(es)}
    return regions, said_regions, entities, said


def test_a_new_items_regions_and_entities_are_its_columns_once_each(db_target: str | Path) -> None:
    xi = EntityTag("xi-jinping", "person", "title", 0, 2)
    sunan = EntityTag("kp-sunan", "place", "summary", 5, 10)
    items = [
        make_item(
            "a", "Xi meets", "Near Sunan", regions=("CN", "KP", "CN"), entities=(xi, sunan, xi)
        ),
        make_item("b", "Calm", "", regions=("TW",)),
        make_item("c", "Nothing", ""),
    ]
    with Store(db_target) as store:
        store.save_items("asia", items, state())
        regions, said_regions, entities, said = _tags(store)
        assert regions == said_regions == {("a", "CN"), ("a", "KP"), ("b", "TW")}
        assert entities == said == {("a", "xi-jinping", "person", "title", 0, 2),
                                    ("a", "kp-sunan", "place", "summary", 5, 10)}  # fmt: skip
        edited = make_item("b", "Calm", "now", regions=("JP",), entities=(sunan,), content_hash="e")
        store.save_items("asia", [edited], state())
        regions, said_regions, entities, said = _tags(store)
        assert regions == said_regions and ("b", "JP") in regions and ("b", "TW") not in regions
        assert entities == said and ("b", "kp-sunan", "place", "summary", 5, 10) in entities


def test_new_items_with_hangul_are_listed_and_edits_move_them(db_target: str | Path) -> None:
    with Store(db_target) as store:
        store.save_items("asia", [make_item(g, *texts) for g, texts in ITEMS.items()], state())
        assert _listed(store) == KOREAN
        edited = [make_item("title", "Launch", "", content_hash="e1"),
                  make_item("en", "North Korea fires", "북한", content_hash="e2")]  # fmt: skip
        store.save_items("asia", edited, state())
        assert _listed(store) == ["compat", "en", "halfwidth", "jamo", "summary"]

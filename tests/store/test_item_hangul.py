"""Which items have Korean text (`item_hangul`, what the console's rule playground always
reads): written by the writer for new items, by a trigger for edits, on both backends.
Expected: Hangul anywhere in the title or the summary (syllables, jamo, compatibility or
half-width jamo) lists the item, Chinese and Japanese do not, and an edit moves it in or
out."""

from __future__ import annotations

from pathlib import Path

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


def _listed(store: Store) -> list[str]:
    with store._write() as conn:
        rows = conn.execute(
            "SELECT guid FROM items JOIN item_hangul ON item_id = id ORDER BY guid"
        ).fetchall()
    return [guid for (guid,) in rows]


def test_new_items_with_hangul_are_listed_and_edits_move_them(db_target: str | Path) -> None:
    with Store(db_target) as store:
        store.save_items("asia", [make_item(g, *texts) for g, texts in ITEMS.items()], state())
        assert _listed(store) == KOREAN
        edited = [make_item("title", "Launch", "", content_hash="e1"),
                  make_item("en", "North Korea fires", "북한", content_hash="e2")]  # fmt: skip
        store.save_items("asia", edited, state())
        assert _listed(store) == ["compat", "en", "halfwidth", "jamo", "summary"]

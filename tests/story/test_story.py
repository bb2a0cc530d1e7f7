"""Same-story grouping (monitor/story/grouping.py): pure logic on hand-made entries in four
languages,
then on the demo feeds, whose answer key (monitor/data/demo/expected.yaml `story:`) says which
items tell the same event. Expected: reworded wires, zh-CN/zh-TW and Japanese pairs merge;
different stories that share names do not; the order of the input never matters."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.demo.demo import load_outlets
from monitor.ingest.normalize import normalize
from monitor.ingest.parse import parse
from monitor.models import DigestEntry, Feed, Item
from monitor.story.grouping import same_story, shingles, story_groups

T0 = datetime(2025, 12, 9, 8, 0, tzinfo=UTC)


def entry(
    item_id: int,
    title: str,
    summary: str = "",
    *,
    link: str | None = None,
    hours: float = 0,
    feed: str = "wire",
) -> DigestEntry:
    item = Item(
        feed_id=feed,
        guid=f"g{item_id}",
        link=link if link is not None else f"https://{feed}.example/{item_id}",
        title=title,
        summary=summary,
        html="",
        author=None,
        lang=None,
        published=T0 + timedelta(hours=hours),
        first_seen=T0,
        content_hash=str(item_id),
    )
    return DigestEntry(item_id=item_id, item=item, feed_title=feed.title(), rules=())


def ids(groups: list[list[DigestEntry]]) -> list[list[int]]:
    return [[e.item_id for e in g] for g in groups]


def test_english_wires_with_reworded_titles_merge() -> None:
    a = entry(
        1,
        "Philippine vessels hit by water cannon near Scarborough Shoal",
        "Manila said Chinese coast guard ships blasted two fisheries boats with water cannon.",
    )
    b = entry(
        2,
        "Manila releases video of water-cannon attack at Scarborough Shoal",
        "The footage shows Chinese coast guard cutters spraying a fisheries vessel.",
        feed="dispatch",
        hours=5,
    )
    assert same_story(a, b)
    assert ids(story_groups([b, a])) == [[1, 2]]


def test_simplified_and_traditional_chinese_versions_merge() -> None:
    simplified = entry(1, "中国海警船进入钓鱼岛领海 日本提出抗议", "日本外务省召见中国大使。")
    traditional = entry(2, "中國海警船進入釣魚島領海 日本提出抗議", "日本外務省召見中國大使。")
    assert shingles(simplified.item.title) == shingles(traditional.item.title)
    assert same_story(simplified, traditional)


def test_japanese_pair_merges() -> None:
    a = entry(
        1, "北朝鮮が弾道ミサイル2発を発射 EEZ外に落下か", "防衛省によると、日本海に向けて発射した。"
    )
    b = entry(
        2, "北朝鮮、弾道ミサイル2発発射 日本のEEZ外に落下", "政府は日本海に落下したと発表した。"
    )
    assert same_story(a, b)


def test_korean_pair_merges_whatever_the_particles() -> None:
    a = entry(
        1,
        "북한, 동해상으로 단거리 탄도미사일 2발 발사",
        "합동참모본부는 북한이 탄도미사일을 발사했다고 밝혔다.",
    )
    b = entry(
        2, "북한이 동해상에 탄도미사일 2발 발사했다", "합참은 북한의 탄도미사일 발사를 확인했다."
    )
    assert same_story(a, b)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            ("North Korea fires ballistic missiles toward the Sea of Japan", "Pyongyang launched."),
            ("North Korea and Japan hold talks on abductees", "Officials met in Mongolia."),
        ),
        (
            ("China and Japan trade barbs at the UN General Assembly", "A speech on history."),
            ("China and Japan sign a fisheries deal", "Quotas for the East China Sea."),
        ),
        (
            ("台湾海峡で中国軍が演習", "中国軍が演習を始めた。"),
            ("台湾で大地震 死者多数", "台湾東部で地震があった。"),
        ),
    ],
)
def test_different_stories_sharing_words_stay_apart(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    assert not same_story(entry(1, *first), entry(2, *second))


def test_identical_link_is_the_same_story_whatever_the_title() -> None:
    link = "https://news.example/a/1"
    a, b = entry(1, "Breaking: quake off Aomori", link=link), entry(2, "青森県沖で地震", link=link)
    assert same_story(a, b)


def test_items_days_apart_are_not_the_same_story() -> None:
    a = entry(1, "North Korea fires ballistic missiles", "Two short-range missiles.")
    b = entry(2, "North Korea fires ballistic missiles", "Two short-range missiles.", hours=24 * 5)
    assert not same_story(a, b)


def test_grouping_is_independent_of_input_order() -> None:
    entries = [
        entry(1, "Khanh Hoa floods test Vietnam's warning system", "Rivers rose in Khanh Hoa."),
        entry(2, "Floods and storm warnings in Vietnam's Khánh Hòa", "Khanh Hoa rivers rose."),
        entry(3, "Nvidia may sell H200 chips to China", "Washington eased export rules.", hours=1),
        entry(4, "The H200 decision: export controls as a bargaining chip", "Nvidia, China."),
        entry(5, "Weather: first snow for Seoul", "A cold snap.", hours=2),
    ]
    expected = ids(story_groups(entries))
    rng = random.Random(4)
    for _ in range(5):
        shuffled = entries[:]
        rng.shuffle(shuffled)
        assert ids(story_groups(shuffled)) == expected
    assert sorted(map(sorted, expected)) == [[1, 2], [3, 4], [5]]


def test_empty_and_single() -> None:
    assert story_groups([]) == []
    assert ids(story_groups([entry(1, "x")])) == [[1]]


# --- the demo feeds ---------------------------------------------------------------------


def _demo_entries() -> list[tuple[DigestEntry, str | None]]:
    """Every parseable demo item as an entry, with its `story` key from expected.yaml."""
    folder = resources.files("monitor") / "data" / "demo"
    expected: Any = YAML(typ="safe").load(folder.joinpath("expected.yaml").read_text("utf-8"))
    now = datetime(2025, 12, 20, tzinfo=UTC)
    out: list[tuple[DigestEntry, str | None]] = []
    for outlet in load_outlets():
        if outlet.id in expected["broken"]:
            continue
        url = f"http://127.0.0.1/feeds/{outlet.id}"
        parsed = parse(outlet.id, outlet.body, {"content-type": outlet.content_type}, url)
        keys = {e.get("guid", e.get("link")): e.get("story") for e in expected["items"][outlet.id]}
        for item in normalize(Feed(id=outlet.id, url=url), parsed, url, now):
            story = keys.get(item.guid, keys.get(item.link))
            out.append((DigestEntry(len(out), item, outlet.title, ()), story))
    return out


def test_demo_stories_are_recovered_within_a_language() -> None:
    """Pairs of items in one language (zh-CN and zh-TW count as one): how many that share a
    story key end up in one group (recall), and that no two that do not share one do
    (precision). Measured: 16 of 25 pairs, no false merge (SAME = 0.11 finds 19, 0.10 merges
    two different stories: 0.12 keeps a margin)."""
    labelled = _demo_entries()
    story = {e.item_id: key for e, key in labelled}
    groups = story_groups([e for e, _ in labelled])
    group_of = {e.item_id: n for n, g in enumerate(groups) for e in g}
    same = wrong = found = 0
    for a, b in itertools.combinations([e for e, _ in labelled], 2):
        if (a.item.lang or "")[:2] != (b.item.lang or "")[:2]:
            continue
        truth = story[a.item_id] is not None and story[a.item_id] == story[b.item_id]
        merged = group_of[a.item_id] == group_of[b.item_id]
        same += truth
        found += truth and merged
        wrong += merged and not truth
    assert same >= 20  # the demo keeps several same-language retellings
    assert wrong == 0
    assert found / same >= 0.6, f"recall {found}/{same}"

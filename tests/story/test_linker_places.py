"""A place shared is not enough to make two reports one development: weather, fishing,
shipping and other navies' drills name the Sea of Japan (동해, 日本海) as often as a North
Korean launch does, a typhoon the Nansei Islands (南西諸島) as often as a defence plan, and a
capital hosts a summit and suffers an explosion the same hour. Reports written for this test,
tagged by the real tagger with the default rules (`monitor.story.evaluate`), linked in
published order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from benchmarks.stories import Report
from monitor.story.evaluate import cluster

START = datetime(2026, 1, 10, tzinfo=UTC)

# (id, language, minutes after START, title, summary)
REPORTS = [
    ("launch-ko", "ko", 0, "북한, 동해상으로 탄도미사일 발사",
     "합동참모본부는 북한이 동해상으로 단거리 탄도미사일 2발을 발사했다고 밝혔다."),
    ("launch-en", "en", 30, "North Korea fires ballistic missiles into the Sea of Japan",
     "South Korea's Joint Chiefs of Staff said two short-range ballistic missiles were launched."),
    ("snow-ja", "ja", 90, "日本海側で大雪 交通に乱れ",
     "強い冬型の気圧配置の影響で、日本海側を中心に大雪となり、交通機関に乱れが出ている。"),
    ("snow-en", "en", 100, "Heavy snow on Japan's Sea of Japan coast disrupts trains",
     "A strong winter pattern brought heavy snow to the Sea of Japan side of Honshu."),
    ("rescue-zh", "zh", 120, "日本海沿岸渔船遇险 海上保安厅展开救援",
     "一艘渔船在日本海沿岸遇险，日本海上保安厅正在展开救援。"),
    ("drill-en", "en", 150, "Russian and Chinese warships fire missiles in Sea of Japan drills",
     "The Russian Pacific Fleet said its ships and Chinese destroyers fired cruise missiles at "
     "targets during joint drills."),
    ("drill-ko", "ko", 170, "중러 함정, 동해서 연합훈련…미사일 사격",
     "러시아 태평양함대는 중국 해군 구축함과 함께 동해에서 연합훈련을 하며 "
     "순항미사일 사격을 했다고 밝혔다."),
    ("budget-ja", "ja", 600, "防衛費、過去最大へ 南西諸島の防空を強化",
     "政府は来年度予算案で防衛費を過去最大とし、南西諸島の防空強化を盛り込んだ。"),
    ("rain-ja", "ja", 660, "南西諸島で記録的大雨 土砂災害に警戒",
     "気象庁によると、南西諸島では記録的な大雨となり、土砂災害への警戒が呼びかけられている。"),
]  # fmt: skip


def stories(rows: list[tuple[str, str, int, str, str]]) -> dict[str, int]:
    """Report id -> its story's number, the reports linked in published order."""
    reports = [
        Report(rid, f"outlet-{rid}", lang, START + timedelta(minutes=m), title, summary, "")
        for rid, lang, m, title, summary in rows
    ]
    return {rid: n for n, group in enumerate(cluster(reports)) for rid in group}


def test_reports_naming_the_same_sea_or_islands_are_not_one_story_for_that() -> None:
    story = stories(REPORTS)
    assert story["launch-ko"] == story["launch-en"]  # the launch itself: one story
    launch = story["launch-ko"]
    for other in ("snow-ja", "snow-en", "rescue-zh", "drill-en", "drill-ko"):
        assert story[other] != launch, other
    assert story["snow-ja"] != story["drill-ko"]
    assert story["budget-ja"] != story["rain-ja"]


# A summit and an explosion in one capital the same hour, and a foreign minister's visit and
# an explosion in another: they share the capital, its country and a few words.
CAPITALS = [
    ("summit-en", "en", 0, "Japan's prime minister meets Chinese premier in Tokyo",
     "The two leaders met in Tokyo and agreed to resume dialogue."),
    ("blast-en", "en", 60, "Explosion at Tokyo station injures dozens",
     "An explosion at Tokyo station injured dozens of people, police said."),
    ("blast-ja", "ja", 70, "東京駅で爆発 数十人けが", "東京駅で爆発があり、数十人がけがをした。"),
    ("visit-en", "en", 120, "North Korea's foreign minister holds talks in Moscow",
     "North Korea's foreign minister met her Russian counterpart in Moscow. The two pledged "
     "to expand cooperation."),
    ("metro-en", "en", 150, "Explosion at Moscow metro station injures dozens",
     "An explosion at a Moscow metro station injured dozens of people, Russian officials said."),
]  # fmt: skip


def test_one_capital_the_same_hours_is_not_one_story_for_that() -> None:
    story = stories(CAPITALS)
    assert story["blast-en"] == story["blast-ja"]  # the explosion itself, in two languages
    assert story["summit-en"] != story["blast-en"]
    assert story["visit-en"] != story["metro-en"]

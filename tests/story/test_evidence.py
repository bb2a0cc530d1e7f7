"""Language-independent evidence (monitor/story/evidence.py): figures, codes, named operations
and sequel words, read from text in English, Japanese, Chinese and Korean. Expected: one figure
written four ways gives one value; dates, times and small counts give nothing; Han numerals
before a counter are read; a quoted exercise name with its code is found in any script; words
saying "again" or "a day after" are found, and not inside other words."""

from __future__ import annotations

import pytest

from monitor.story.evidence import codes, figures, numbers, operations, read, sequel


@pytest.mark.parametrize(
    "text",
    [
        "The missile flew about 650 km before falling into the sea",
        "北朝鮮ミサイル、約650キロ飛行",
        "飞行距离约650公里",
        '합참 "약 650㎞ 비행"',
        "約６５０キロメートル飛行",  # full-width digits
    ],
)
def test_a_distance_is_one_value_in_every_script(text: str) -> None:
    assert numbers(text) == {"650km"}


@pytest.mark.parametrize(
    "text",
    [
        "US approves $1.2 billion arms sale to Taiwan",
        "美国国务院批准约12亿美元对台军售",
        "米国務省、台湾への武器売却承認　約12億ドル",
        "미국, 대만에 12억 달러 규모 무기 판매 승인",
    ],
)
def test_an_amount_is_scaled_the_same_way_in_every_language(text: str) -> None:
    assert numbers(text) == {"1.2e+09"}


@pytest.mark.parametrize(
    "text", ["Magnitude 6.1 quake", "台湾東部沖でM6.1の地震", "发生6.1级地震", "규모 6.1 지진"]
)
def test_a_magnitude_is_read_with_or_without_its_m(text: str) -> None:
    assert numbers(text) == {"6.1"}


@pytest.mark.parametrize(
    "text",
    [
        "8日午後3時2分ごろ",
        "13일 오전 7시 12분께",
        "3月8日14时02分",
        "on March 3 at 7:12 a.m.",
        "in 2026, for the 3rd time",
        "2026年の予算",
        "fired one missile, two dead, 1발 발사",
    ],
)
def test_dates_times_years_and_small_counts_are_not_evidence(text: str) -> None:
    assert numbers(text) == frozenset()


def test_han_numerals_are_read_only_before_a_counter() -> None:
    assert numbers("兵士十人が越境") == {"10"}
    assert numbers("艦艇二十五隻") == {"25"}
    assert numbers("統一と一時停止") == frozenset()


def test_round_numbers_are_weaker_than_specific_ones() -> None:
    assert figures("about 10 soldiers, 650 km, 37 ships, 300 troops") == {
        ("10", False),
        ("650km", True),
        ("37", True),
        ("300", False),
    }


def test_a_code_is_the_same_in_every_script_and_is_not_a_number() -> None:
    assert codes('China launches "Joint Blade-2026A" drills') == {"2026a"}
    assert codes("东部战区开展“联合利刃-2026A”演习") == {"2026a"}
    assert numbers("“联合利刃-2026A”演习") == frozenset()


def test_a_weapon_written_without_its_hyphen_is_the_same_code() -> None:
    # The Japanese press writes J15 and F15; the English and Korean J-15 and F-15.
    assert codes("空母「遼寧」のJ15戦闘機が空自のF15に照射") == {"j-15", "f-15"}
    assert codes("J-15 fighters locked radar on F-15s") == {"j-15", "f-15"}
    assert codes("J-15 전투기가 F-15 전투기에 레이더") == {"j-15", "f-15"}
    assert codes("Nvidia's H200 and the A321neo") == {"h-200"}  # 321neo: more letters after
    assert codes("Q3 sales rose at the A1 plant") == frozenset()  # one digit: no weapon


def test_known_operations_meet_across_languages_and_scripts() -> None:
    for text in [
        "PLA launches Strait Thunder-2025A drills",
        "解放军开展“海峡雷霆-2025A”演习",
        "共軍「海峽雷霆-2025A」演習",  # Traditional Chinese folds to the Simplified name
    ]:
        assert "strait-thunder" in operations(text), text


def test_a_quoted_name_with_a_code_is_an_operation_of_its_own_language() -> None:
    assert operations("东部战区开展“联合利刃-2026A”演习") == {"联合利刃"}
    assert operations('China launches "Joint Blade-2026A" drills') == {"joint blade"}
    assert operations('He said "we will respond" on Monday') == frozenset()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("하루 만에 또 MDL…이번엔 북한 병사 귀순", "만에"),
        ("North Korean soldier defects, a day after border incursion", "a day after"),
        ("スカボロー礁で衝突　前日の放水に続き緊張", "前日"),
        ("朝鲜再次发射导弹", "再次"),
        ("North Korea fires missiles again", "again"),
    ],
)
def test_sequel_words_are_found_in_each_language(text: str, word: str) -> None:
    assert sequel(text) == word


def test_sequel_words_are_whole_words_in_english() -> None:
    assert sequel("Protests against the base; gains for the ruling party") is None


@pytest.mark.parametrize(
    "text",
    [
        "Joint Blade-2026A: H-6K bombers flew 650 km, again",
        "“联合利刃-2026A”演习 再次 十五架 飞行约650公里",
        "北朝鮮が再びミサイル、約650キロ飛行",
    ],
)
def test_reading_a_text_once_finds_what_each_reader_finds(text: str) -> None:
    seen = read(text)
    assert seen.figures == figures(text) and seen.codes == codes(text)
    assert seen.operations == operations(text) and seen.sequel == sequel(text)
    assert seen.figures or seen.codes  # something to compare in each

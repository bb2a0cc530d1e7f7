"""Region tagging: the built-in gazetteer, longest match, ambiguity rules, and overrides files.

The tagging table below is the spec in examples: each row is a text and the exact codes it
must get, in English, Japanese, Chinese (both scripts) and Korean, with both sides of every
ambiguous name (Georgia the country and the US state, Jordan the country and the player...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.match import regionfile, regions
from monitor.match.regions import Gazetteer, load_gazetteer
from monitor.match.textnorm import Script, boundary_ok, fold, term_script

ROOT = Path(__file__).resolve().parents[2]
GAZETTEER_DATA = ROOT / "monitor" / "data" / "gazetteer"


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer()


# (text, expected codes). Grouped by what each group proves.
TAGGING = [
    # countries, capitals, demonyms, short names
    ("Beijing urges Tokyo to retract remarks on Taiwan", "CN JP TW"),
    ("Taiwan's president visits Kinmen", "TW"),
    ("Taiwanese voters head to the polls", "TW"),
    ("Pyongyang fires a missile; Seoul condemns it", "KP KR"),
    ("North Korean troops near Yongbyon", "KP"),
    ("Russia and Vietnam sign a deal in Hanoi", "RU VN"),
    ("Iran and Syria talks", "IR SY"),
    ("Manila protests to the Philippines' neighbour", "PH"),
    ("The U.S. and the UK warn Britain's allies", "GB US"),
    ("US and USA and America", "US"),
    ("Washington warns Beijing", "CN US"),
    ("Paris hosts a summit on Ukraine", "FR UA"),
    ("Japanese and Chinese diplomats meet", "CN JP"),
    ("Khánh Hòa and Hanoi", "VN"),
    # longest match wins
    ("South Sudan and Sudan clash", "SD SS"),
    ("Papua New Guinea quake", "PG"),
    ("Guinea-Bissau coup", "GW"),
    ("Equatorial Guinea and Guinea", "GN GQ"),
    ("Nigeria and Niger sign deal", "NE NG"),
    ("North Korea test", "KP"),
    ("Dominican Republic and Dominica", "DM DO"),
    ("American Samoa and Samoa", "AS US WS"),
    # blockers: longer names that tag nothing or something else
    ("China Airlines flight lands", "TW"),
    ("fine china auction", ""),
    ("South China Sea tensions rise", "SCS"),
    ("New Mexico governor", ""),
    ("Mexico tariffs", "MX"),
    ("Air Jordan sneakers sell out", ""),
    ("a guinea pig study", ""),
    ("Niger Delta militants", "NG"),
    ("Indian Ocean tsunami", ""),
    ("Latin America trade", ""),
    ("Washington Post reports", ""),
    ("Central African states meet", ""),
    ("Central African Republic vote", "CF"),
    # common words that are also names
    ("a family reunion", ""),
    ("Cyclone hits Réunion", "FR RE"),
    ("polish the draft", ""),
    ("Polish farmers protest", "PL"),
    ("a new jersey for the team", ""),
    ("Jersey and Guernsey", "GB GG JE"),
    # ambiguous names, both sides
    ("Georgia's parliament passes bill as Russia watches", "GE RU"),
    ("Protests in Tbilisi: Georgia's government", "GE"),
    ("Georgia Bulldogs win in Atlanta", ""),
    ("Georgia election results", ""),
    ("Jordan's King Abdullah meets Israeli PM", "IL JO"),
    ("Jordan scores 30 in the NBA win", ""),
    ("Jordan and Amman", "JO"),
    ("Chad troops deployed to the Sahel", "TD"),
    ("Chad Smith wins award", ""),
    ("Turkey earthquake kills hundreds", "TR"),
    ("Thanksgiving Turkey recipe", ""),
    ("a turkey in the oven", ""),
    ("Türkiye and Syria", "SY TR"),
    ("let us go to the UK", "GB"),
    ("Congo rebels seize Goma", "CD"),
    ("Congo votes; Brazzaville calm", "CG"),
    ("DR Congo and Rwanda", "CD RW"),
    ("Korea exports surge", "KR"),
    ("inter-Korean talks resume", "KP KR"),
    ("Washington state wildfire near Seattle", ""),
    ("Paris Hilton launches a brand", ""),
    ("Paris Agreement targets", ""),
    # places that stand for a country; parents and groups
    ("Okinawa base relocation", "JP"),
    ("Hokkaido quake", "JP"),
    ("Crimea bridge attack", "UA"),
    ("Xinjiang and Tibet", "CN"),
    ("Hong Kong protests", "CN HK"),
    ("Senkaku patrol", "ECS JP SENKAKU"),
    ("Diaoyu Islands", "ECS JP SENKAKU"),
    ("Scarborough Shoal standoff", "SCS"),
    ("Spratly build-up", "SCS"),
    ("Matsu Islands and Kinmen", "TW"),
    ("Jerusalem embassy", "IL PS"),
    ("Brussels sanctions", "BE EU"),
    # Japanese
    ("北朝鮮が弾道ミサイル発射", "KP"),
    ("韓国と北朝鮮", "KP KR"),
    ("中国が台湾周辺で演習", "CN TW"),
    ("日米首脳会談", "JP US"),
    ("日米韓が協議", "JP KR US"),
    ("米中対立が激化", "CN US"),
    ("米中部で竜巻", "US"),
    ("米の価格が高騰", ""),
    ("日中関係が悪化", "CN JP"),
    ("日中は晴れる見込み", ""),
    ("中国地方で大雨", ""),
    ("尖閣諸島周辺に中国海警", "CN ECS JP SENKAKU"),
    ("平壌で軍事パレード", "KP"),
    ("インドで選挙", "IN"),
    ("インドネシアで地震", "ID"),
    ("インド太平洋戦略", ""),
    ("ジョージアでデモ、トビリシ", "GE"),
    ("ジョージア州知事選", ""),
    ("沖縄の米軍基地", "JP US"),
    ("北方領土問題", "KURILS RU"),
    ("朝鮮日報によると", ""),
    ("タイで総選挙", "TH"),
    ("タイミングが悪い", ""),
    ("ネクタイ姿の首相", ""),
    ("マリで軍事政権", "ML"),
    ("マリンスポーツ", ""),
    ("ソマリア沖の海賊", "SO"),
    ("ワシントン・ポスト紙", ""),
    ("グルジア紛争", "GE"),
    # Chinese, Simplified and Traditional
    ("朝鲜发射导弹", "KP"),
    ("北韓試射飛彈", "KP"),
    ("南韓總統", "KR"),
    ("韩国总统", "KR"),
    ("中國與臺灣", "CN TW"),
    ("中国台湾省", "TW"),
    ("中美关系", "CN US"),
    ("其中美国", "US"),
    ("中美洲移民", ""),
    ("钓鱼岛附近", "ECS JP SENKAKU"),
    ("釣魚台列嶼", "ECS JP SENKAKU"),
    ("钓鱼台国宾馆会见", "CN"),
    ("两岸关系紧张", "CN TW"),
    ("南海仲裁案", "SCS"),
    ("印度与巴基斯坦", "IN PK"),
    ("印度尼西亚地震", "ID"),
    ("刚果(金)冲突", "CD"),
    # Korean
    ("북한의 미사일 발사", "KP"),
    ("북한이 도발", "KP"),
    ("조선중앙통신 보도", "KP"),
    ("조선업 수주 호황", ""),
    ("북조선", "KP"),
    ("한국 정부", "KR"),
    ("한미일 정상회의", "JP KR US"),
    ("대만 해협", "TW"),
    ("중국의 압박", "CN"),
    ("일본과 한국", "JP KR"),
    ("인도적 지원", ""),
    ("인도 총선", "IN"),
    ("독도 영유권", "KR LIANCOURT"),
    ("센카쿠 열도", "ECS JP SENKAKU"),
    ("한미반도체 주가", ""),
    ("수단을 가리지 않고", ""),
    ("수단 내전 격화", "SD"),
    ("오만한 태도", ""),
    ("신장 180cm", ""),
    ("신장위구르 인권", "CN"),
    ("가나가와현 지진", ""),
]


@pytest.mark.parametrize(("text", "expected"), TAGGING)
def test_tagging_table(gaz: Gazetteer, text: str, expected: str) -> None:
    assert gaz.tag(text, "") == tuple(expected.split())


def test_title_and_summary_are_both_read_and_kept_apart(gaz: Gazetteer) -> None:
    assert gaz.tag("Talks in Seoul", "with Japan") == ("JP", "KR")
    # `South` ending the title must not join `Sudan` starting the summary.
    assert gaz.tag("Rains in the South", "Sudan floods") == ("SD",)


def test_context_can_come_from_the_other_field(gaz: Gazetteer) -> None:
    assert gaz.tag("Georgia votes", "Moscow watches closely: Russia") == ("GE", "RU")


# --- the built-in data ------------------------------------------------------------------------


def test_every_iso_country_is_a_region_with_its_name(gaz: Gazetteer) -> None:
    for country in pycountry.countries:
        assert country.alpha_2 in gaz.codes
        region = gaz.region(country.alpha_2)
        assert region.name
    assert gaz.region("tw").name == "Taiwan"
    assert {"EU", "SCS", "ECS", "SENKAKU", "XK"} <= gaz.codes
    with pytest.raises(KeyError):
        gaz.region("ZZ")


def test_gazetteer_codes_have_parents_and_groups(gaz: Gazetteer) -> None:
    senkaku = gaz.region("SENKAKU")
    assert (senkaku.parent, senkaku.group) == ("JP", "ECS")
    assert gaz.region("HK").parent == "CN"
    assert gaz.region("GU").parent == "US"


def test_aliases_are_folded_and_describe_themselves(gaz: Gazetteer) -> None:
    texts = {a.text for a in gaz.aliases}
    assert {"taiwan", "북한", "台湾", "south sudan"} <= texts
    assert all(a.text == fold(a.text).strip() for a in gaz.aliases)
    georgia = [a for a in gaz.aliases if a.text == "georgia"]
    assert [a.code for a in georgia] == ["GE"] and georgia[0].requires
    blocker = next(a for a in gaz.aliases if a.text == "new mexico")
    assert blocker.code is None and not blocker.context
    assert any(a.context and a.text == "atlanta" for a in gaz.aliases)
    langs = {a.lang for a in gaz.aliases if not a.context}
    assert {"en", "ja", "zh", "ko"} <= langs


def test_curated_cache_matches_its_yaml() -> None:
    # curated.json is curated.yaml parsed (for load speed); stale only if someone forgot to
    # run `python -m monitor.data.gazetteer.build` after editing the YAML.
    source = GAZETTEER_DATA / "curated.yaml"
    from_yaml = regionfile._curated(source, GAZETTEER_DATA / "missing.json")
    from_cache = regionfile._curated(source, GAZETTEER_DATA / "curated.json")
    assert from_cache == from_yaml
    assert not isinstance(from_cache, type(from_yaml))  # the cache was used, not the YAML


def test_loading_is_cached_and_builds_the_whole_gazetteer() -> None:
    # How long it takes is measured by benchmarks/match.py, not here: a timed test only
    # measures how busy the machine is.
    regionfile._builtin_layers.cache_clear()
    fresh = regions._gazetteer(regionfile.load_layers())
    assert fresh.tag("Taiwan", "")
    assert load_gazetteer() is load_gazetteer()
    assert len(fresh.aliases) > 2000


# --- scanning and resolving as separate steps (what the match engine uses) ---------------------


def test_resolve_takes_hits_found_by_another_scanner(gaz: Gazetteer) -> None:
    text = fold("South Sudan and Georgia, near Tbilisi; タイミング")
    hits = []
    for index, alias in enumerate(gaz.aliases):
        for found in re.finditer(re.escape(alias.text), text):
            if gaz.accepts(text, found.start(), found.end()):
                hits.append((index, found.start(), found.end()))
    assert sorted(hits) == sorted(gaz.scan(text))
    assert gaz.resolve(hits) == ("GE", "SS")
    assert gaz.resolve([]) == ()
    # A scanner that reports folded texts (not indices) converts with `indices`.
    by_text = [(i, 0, 11) for i in gaz.indices("south sudan")]
    assert by_text and gaz.resolve(by_text) == ("SS",)
    assert gaz.indices("atlantis") == ()


def test_case_sensitive_aliases_need_the_raw_text(gaz: Gazetteer) -> None:
    raw = "US warns"
    hits = gaz.scan(fold(raw))
    assert gaz.resolve(hits, raw=raw) == ("US",)
    assert gaz.resolve(hits) == ()


_TEXT = st.text(alphabet=st.sampled_from("ab _-'.é中한丁Aa1"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(before=_TEXT, after=_TEXT, word=st.sampled_from(["taiwan", "u.s.", "north korea"]))
def test_scan_boundaries_agree_with_textnorm(
    gaz: Gazetteer, before: str, after: str, word: str
) -> None:
    # `scan` inlines a fast path of `boundary_ok`; it must never disagree with it.
    text = fold(before) + word + fold(after)
    found = {(s, e) for i, s, e in gaz.scan(text) if gaz.aliases[i].text == word}
    expected = {
        (m.start(), m.end())
        for m in re.finditer(re.escape(word), text)
        if boundary_ok(text, m.start(), m.end(), term_script(word))
    }
    assert found == expected
    assert term_script(word) is Script.WORD


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_tag_never_fails_and_returns_known_sorted_codes(
    gaz: Gazetteer, title: str, summary: str
) -> None:
    codes = gaz.tag(title, summary)
    assert list(codes) == sorted(set(codes))
    assert set(codes) <= gaz.codes


# --- the user's overrides file ----------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_add_change_remove_and_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# A user file that uses every section; each assertion below names its effect.\n"
        "regions:\n"
        "  OKINAWA:\n"
        "    name: Okinawa Prefecture\n"
        "    parent: JP\n"
        "    aliases: {en: [Naha, Henoko], ja: [辺野古]}\n"
        "  TW:\n"
        "    aliases: {zh: [宝岛]}\n"
        "    remove: [Formosa]\n"
        "compounds:\n"
        "  Quad: [US, JP, AU, IN]\n"
        "ambiguous:\n"
        "  Georgia:\n"
        "    - {code: GE, requires: [Tbilisi]}\n"
        "    - {code: US, requires: [Atlanta]}\n"
        "blockers: [Taiwan Semiconductor]\n",
    )
    gaz = load_gazetteer(path)
    assert gaz.tag("Henoko landfill", "") == ("JP", "OKINAWA")
    assert gaz.tag("辺野古", "") == ("JP", "OKINAWA")
    assert gaz.tag("宝岛", "") == ("TW",)
    assert gaz.tag("Formosa", "") == ()
    assert gaz.tag("Quad summit", "") == ("AU", "IN", "JP", "US")
    assert gaz.tag("Georgia in Atlanta", "") == ("US",)
    assert gaz.tag("Taiwan Semiconductor earnings", "") == ()
    assert gaz.region("OKINAWA").parent == "JP"
    # The built-in gazetteer is untouched by an overrides file.
    assert load_gazetteer().tag("Formosa", "") == ("TW",)


def test_the_shipped_example_file_is_valid_when_uncommented(tmp_path: Path) -> None:
    example = (ROOT / "rules" / "regions.yaml").read_text(encoding="utf-8")
    assert load_gazetteer(ROOT / "rules" / "regions.yaml").tag("Formosa", "") == ("TW",)
    start = example.index("# regions:")
    uncommented = "\n".join(line[2:] for line in example[start:].splitlines())
    gaz = load_gazetteer(write(tmp_path, uncommented))
    assert gaz.tag("Henoko", "") == ("JP", "OKINAWA")
    assert gaz.tag("Formosa", "") == ()
    assert gaz.tag("Jordan Spieth wins", "") == ()


ERRORS = [
    # (file text, line, column, words the message must contain)
    ("regions:\n  TW: [\n", 3, 1, "expected"),
    ("region:\n  TW: {}\n", 1, 1, "unknown key 'region' in the file (did you mean 'regions'?)"),
    ("regions:\n  TW:\n    alias: {en: [x]}\n", 3, 5, "did you mean 'aliases'"),
    ("regions:\n  TW:\n    aliases: {fr: [Taïwan]}\n", 3, 15, "unknown key 'fr'"),
    ("regions:\n  XX:\n    aliases: {en: [Xland]}\n", 2, 3, "new region XX needs a name"),
    ("regions:\n  SENKAKU2:\n    name: S\n    parent: JPN\n", 4, 13, "unknown region code"),
    ("regions:\n  TW:\n    parent: Japan\n", 3, 13, "'Japan' is a name of JP"),
    ("regions:\n  TW:\n    remove: [Atlantis]\n", 3, 14, "'Atlantis' is not an alias of TW"),
    ("regions:\n  t!:\n    name: T\n", 2, 3, "region code 't!'"),
    ("compounds:\n  Quad: [US, UK]\n", 2, 14, "'UK' is a name of GB"),
    ("compounds:\n  Quad: []\n", 2, 9, "expected one region code"),
    ("ambiguous:\n  Georgia:\n    - {code: GE, requires: ['@ZZ']}\n", 3, 29, "unknown region"),
    ("ambiguous:\n  Georgia:\n    - {code: GE, require: [x]}\n", 3, 18, "did you mean 'requires'"),
    ("blockers: New Mexico\n", 1, 11, "blockers must be a list"),
    ("blockers: ['']\n", 1, 12, "non-empty name"),
    ("regions: [TW]\n", 1, 10, "regions must be a mapping"),
    ("regions:\n  TW: {name: a}\n  TW: {name: b}\n", 3, 3, "duplicate key"),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), ERRORS)
def test_overrides_errors_name_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_gazetteer(path)
    error = raised.value
    assert (error.path, error.line, error.column) == (str(path), line, column), str(error)
    assert words in str(error)
    assert str(error).startswith(f"{path}:{line}:{column}: ")


def test_unreadable_or_empty_overrides(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_gazetteer(tmp_path / "absent.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"blockers: [Caf\xe9]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_gazetteer(tmp_path / "latin1.yaml")
    assert load_gazetteer(write(tmp_path, "# nothing yet\n")).tag("Taiwan", "") == ("TW",)

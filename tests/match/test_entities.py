"""The entity gazetteer: its shipped data, its loader and overrides file, the headline table the
entity tagger will be held to; and the region gazetteer's country names in four languages.

Fixtures: the shipped files under monitor/data/entities/ (checked against the packages and the
region gazetteer they come from), user files written to tmp_path, and
tests/match/entity_headlines.yaml (headlines written for it, with the ids each should yield).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pycountry
import pytest
from ruamel.yaml import YAML

from monitor.data.entities import build as entity_build
from monitor.data.gazetteer import build as gazetteer_build
from monitor.errors import ConfigError
from monitor.match import entities, regionfile
from monitor.match.entities import Entities, load_entities
from monitor.match.regions import Gazetteer, load_gazetteer
from monitor.match.textnorm import fold

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "monitor" / "data" / "entities"
HEADLINES = Path(__file__).with_name("entity_headlines.yaml")
LANGS = ("en", "ja", "zh", "ko")
# The countries of the default rules: those their queries name, and those their topics are about.
RULE_COUNTRIES = {"CN", "TW", "JP", "KR", "KP", "US", "FR", "PH"}


def rule_countries() -> set[str]:
    text = "".join(p.read_text("utf-8") for p in (ROOT / "rules" / "alerts").glob("*.yaml"))
    return RULE_COUNTRIES | set(re.findall(r"region:([A-Z]{2})\b", text))


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer()


@pytest.fixture(scope="module")
def shipped(gaz: Gazetteer) -> Entities:
    """The shipped data, read with every region code checked against the gazetteer."""
    return entities.builtin_table(frozenset(gaz.codes)).freeze()


# --- the shipped data ------------------------------------------------------------------------


def test_counts_per_kind_and_language(shipped: Entities) -> None:
    counts = {kind: len(shipped.of_kind(kind)) for kind in entities.KINDS}
    names = {lang: sum(len(e.names.of(lang)) for e in shipped) for lang in LANGS}
    print(f"entities: {counts}; names: {names}")
    assert counts["person"] >= 150 and counts["org"] >= 150 and counts["place"] >= 850
    assert min(names.values()) >= 1000


def test_ids_are_well_formed_and_each_curated_file_owns_its_ids() -> None:
    yaml = YAML(typ="safe", pure=True)
    files = {n: yaml.load((DATA / f"{n}.yaml").read_text("utf-8")) for n in entities.CURATED}
    generated = json.loads((DATA / "generated.json").read_text("utf-8"))["layer"]["entities"]
    owners: dict[str, str] = {ident: "generated.json" for ident in generated}
    for name, doc in files.items():
        for ident, entry in doc["entities"].items():
            assert entities.ID_RE.fullmatch(ident), ident
            # A file may add to another's entity, but two files must not both create one.
            if "kind" in entry:
                assert ident not in owners, f"{ident} is created in {owners[ident]} and {name}"
                owners[ident] = f"{name}.yaml"
            else:
                assert ident in owners, f"{name}.yaml changes {ident}, which nobody creates"


def test_countries_and_parents_are_gazetteer_codes(shipped: Entities, gaz: Gazetteer) -> None:
    for entity in shipped:
        assert entity.country is None or entity.country in gaz.codes, entity.id
        assert entity.parent is None or entity.parent in gaz.codes, entity.id
        if entity.kind == "place":
            assert entity.country, entity.id  # every place lies in some region
    # A disputed place carries the dispute's code and its holder, as SENKAKU has JP.
    shoal = shipped["scs-second-thomas-shoal"]
    assert (shoal.country, shoal.parent) == ("SCS", "PH")
    assert shipped["senkaku-uotsuri"].parent == "JP"
    assert shipped["antonio-guterres"].country is None


def test_people_and_orgs_of_the_rule_countries_have_all_four_languages(
    shipped: Entities,
) -> None:
    countries = rule_countries()
    assert {"CN", "IN", "PK", "VN"} <= countries  # read from the rules, not only the list above
    for entity in shipped:
        if entity.kind != "place" and (entity.country in countries or entity.country is None):
            missing = [lang for lang in LANGS if not entity.names.of(lang)]
            assert not missing, f"{entity.id} has no {missing} names"
    leaders = {e.country for e in shipped.of_kind("person")}
    assert countries <= leaders, f"no one stands for {sorted(countries - leaders)}"
    assert any(e.country is None for e in shipped.of_kind("person"))  # the UN's people


# Korean has no safe name for these: 산시 is both Shanxi and Shaanxi, the others are a Korean
# city or word too (안산, 안양, 한중 "Korea–China", 전장 "battlefield", 창저우 is Changzhou).
NO_KOREAN = {
    *("cn-shanxi", "cn-shaanxi", "cn-anshan", "cn-anyang", "cn-hanzhong", "cn-zhenjiang"),
    *("cn-cangzhou", "cn-puyang", "cn-dezhou"),
}


def test_places_of_china_taiwan_japan_and_the_koreas_have_cjk_names(shipped: Entities) -> None:
    for place in shipped.of_kind("place"):
        if place.country in {"CN", "TW", "JP", "KR", "KP"}:
            assert place.names.ja and place.names.zh, place.id
            assert place.names.ko or place.id in NO_KOREAN, place.id


def test_every_first_level_division_and_big_city_is_a_place(shipped: Entities) -> None:
    spec = YAML(typ="safe", pure=True).load((DATA / "derive.yaml").read_text("utf-8"))
    isos = {e.iso for e in shipped if e.iso}
    for code in spec["countries"]:
        for sub in pycountry.subdivisions.get(country_code=code):
            if sub.parent_code is None and sub.code not in spec["skip_subdivisions"]:
                assert sub.code in isos, sub.code
    populous = {e.id for e in shipped if (e.population or 0) >= 500_000}
    assert len(populous) >= 450
    for ident in ("cn-shenzhen", "in-surat", "jp-sapporo", "us-phoenix", "vn-hue", "kp-hamhung"):
        assert ident in populous
    assert shipped["jp-okinawa"].iso == "JP-47"


def test_the_names_the_brief_promises_are_there(shipped: Entities) -> None:
    expect = {
        "Xi": "xi-jinping",
        "高市首相": "takaichi-sanae",
        "李 대통령": "lee-jae-myung",
        "川普": "donald-trump",
        "習氏": "xi-jinping",
        "Khanh Hoa": "vn-khanh-hoa",  # folded: Khánh Hòa
        "Red Fort": "in-red-fort",
        "東部戦区": "cn-eastern-theater-command",
        "동부전구": "cn-eastern-theater-command",
        "東部戰區": "cn-eastern-theater-command",  # Traditional folds to 东部战区
        "KCNA": "kcna",
        "TSMC": "tsmc",
        "ASML": "asml",
        "安理会": "un-security-council",
    }
    for name, ident in expect.items():
        assert ident in [e.id for e in shipped.named(name)], name
    places = ("Yonaguni", "Kinmen", "Matsu", "Penghu", "Guam", "Okinawa", "Second Thomas Shoal")
    places += ("Yongbyon", "Sohae", "Panmunjom", "Kadena", "Yokosuka", "Jeju", "Nice")
    for name in places:
        assert [e.kind for e in shipped.named(name)] == ["place"], name


def test_ambiguous_names_need_context_and_shared_names_are_marked(shipped: Entities) -> None:
    nice = shipped["fr-nice"]
    assert "Nice" in nice.ambiguous and "Nice" in nice.exact and "@FR" in nice.context
    assert "Mobile" in shipped["us-mobile"].ambiguous
    assert "Georgia" in shipped["us-georgia"].ambiguous
    assert "Xi" in shipped["xi-jinping"].exact
    assert "Kyoto Protocol" in shipped.blockers
    for entity in shipped:
        assert not entity.ambiguous or entity.context, entity.id
        for name in entity.exact:
            assert name != name.lower(), f"{entity.id}: exact {name!r} has no capitals"
    # A name two entities share must need context in at least one of them, or it tags both.
    owners: dict[str, list[Any]] = {}
    for entity in shipped:
        for _, name in entity.names:
            owners.setdefault(fold(name).strip(), []).append(entity)
    for text, group in owners.items():
        ids = sorted({e.id for e in group})
        marked = any(text in {fold(a).strip() for a in e.ambiguous} for e in group)
        assert len(ids) == 1 or marked, f"{text!r} is a name of {ids}"


def test_the_json_is_up_to_date_with_its_sources() -> None:
    # generated.json from the packages, the caches from their YAML: stale only if someone forgot
    # to run `python -m monitor.data.entities.build` after an edit.
    assert entity_build.main(["--check"]) == 0
    for name in entities.CURATED:
        source = DATA / f"{name}.yaml"
        from_cache = regionfile._curated(source, DATA / f"{name}.json")
        assert from_cache == regionfile._curated(source, DATA / "missing.json")
        assert isinstance(from_cache, dict) and type(from_cache) is dict  # the cache was read


# --- the loader ------------------------------------------------------------------------------


def test_loading_is_cached() -> None:
    # How fast it loads is the match benchmark's business (no timed unit tests); what must
    # hold is that the table is built once and shared.
    entities.builtin_table.cache_clear()
    entities._builtin.cache_clear()
    loaded = load_entities()
    assert load_entities() is loaded
    assert len(loaded) > 1000


def test_a_broken_shipped_file_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The JSON caches carry no positions: the loader reads the YAML again to name the line.
    for path in DATA.iterdir():
        if path.suffix in {".json", ".yaml"}:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    broken = "entities:\n  xx-new:\n    names: {en: [Somewhere]}\n"
    (tmp_path / "places.yaml").write_text(broken, encoding="utf-8")
    cache = gazetteer_build.render_curated(tmp_path / "places.yaml")
    (tmp_path / "places.json").write_text(cache, encoding="utf-8")
    monkeypatch.setattr(entities, "_DATA", tmp_path)
    entities.builtin_table.cache_clear()
    try:
        with pytest.raises(ConfigError) as raised:
            entities.builtin_table()
    finally:
        entities.builtin_table.cache_clear()
    assert str(raised.value).startswith(f"{tmp_path / 'places.yaml'}:2:3: new entity xx-new")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_add_change_remove_drop_and_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# A user file using every key; each assertion below names its effect.\n"
        "entities:\n"
        "  kr-pyeongtaek:\n"
        "    kind: place\n"
        "    country: kr\n"
        "    role: port city\n"
        "    names: {en: [Pyeongtaek], ko: [평택]}\n"
        "  lin-jian:\n"
        "    names: {ja: [林剣報道官]}\n"
        "    role: spokesman\n"
        "  us-mobile:\n"
        "    remove: [Mobile]\n"
        "    names: {en: ['Mobile, Alabama']}\n"
        "  jp-kobe:\n"
        "    ambiguous: [Kobe]\n"
        "    context: [Hyogo, '@JP']\n"
        "drop: [ph-antique]\n"
        "blockers: [Nice weather]\n",
    )
    loaded = load_entities(path)
    new = loaded["kr-pyeongtaek"]
    assert (new.kind, new.country, new.name, new.names.ko) == (
        "place",
        "KR",
        "Pyeongtaek",
        ("평택",),
    )
    assert loaded["lin-jian"].names.ja == ("林剣", "林剣報道官")
    assert loaded["lin-jian"].role == "spokesman"
    assert loaded["lin-jian"].country == "CN"  # untouched keys stay
    assert loaded["us-mobile"].names.en == ("Mobile, Alabama",)
    assert loaded["jp-kobe"].context == ("hyogo", "@JP")  # folded, codes kept
    assert "ph-antique" not in loaded
    assert "Nice weather" in loaded.blockers
    # The built-in data is untouched by an overrides file.
    assert "ph-antique" in load_entities() and "kr-pyeongtaek" not in load_entities()


def test_the_shipped_example_file_is_valid_when_uncommented(tmp_path: Path) -> None:
    example = ROOT / "rules" / "entities.yaml"
    assert len(load_entities(example)) == len(load_entities())  # all comments: no change
    text = example.read_text(encoding="utf-8")
    start = text.index("# entities:")
    uncommented = "\n".join(line[2:] for line in text[start:].splitlines())
    loaded = load_entities(write(tmp_path, uncommented))
    assert loaded["kr-pyeongtaek"].names.ja == ("平沢",)
    assert "ph-antique" not in loaded


ERRORS = [
    # (file text, line, column, words the message must contain)
    ("entities:\n  xi-jinping: [\n", 3, 1, "invalid YAML"),
    (
        "entity:\n  xi-jinping: {}\n",
        1,
        1,
        "unknown key 'entity' in the file (did you mean 'entities'?)",
    ),
    ("entities:\n  xi-jinping:\n    name: [Xi]\n", 3, 11, "'name' must be a non-empty string"),
    ("entities:\n  xi-jinping:\n    nmes: {en: [Xi]}\n", 3, 5, "did you mean 'names'"),
    ("entities:\n  xi-jinping:\n    names: {fr: [Xi]}\n", 3, 13, "unknown key 'fr' in names"),
    (
        "entities:\n  Xi Jinping:\n    kind: person\n",
        2,
        3,
        "entity id 'Xi Jinping' is not well-formed",
    ),
    ("entities:\n  new-one:\n    names: {en: [A]}\n", 2, 3, "new entity new-one needs a kind"),
    (
        "entities:\n  new-one:\n    kind: persn\n    names: {en: [A]}\n",
        3,
        11,
        "did you mean 'person'",
    ),
    ("entities:\n  new-one:\n    kind: org\n", 2, 3, "entity new-one has no names"),
    ("entities:\n  xi-jinping:\n    country: CHN\n", 3, 14, "unknown region code 'CHN'"),
    (
        "entities:\n  xi-jinping:\n    remove: [Xi Dada]\n",
        3,
        14,
        "'Xi Dada' is not a name of xi-jinping",
    ),
    ("entities:\n  xi-jinping:\n    exact: [XI]\n", 3, 13, "exact: 'XI' is not a name"),
    ("entities:\n  xi-jinping:\n    ambiguous: [Xi]\n", 3, 5, "has ambiguous names but no context"),
    ("entities:\n  xi-jinping:\n    context: ['@ZZ']\n", 3, 15, "unknown region code 'ZZ'"),
    (
        "entities:\n  xi-jinping:\n    population: many\n",
        3,
        17,
        "'population' must be a whole number",
    ),
    ("entities:\n  xi-jinping:\n    names: {en: ['']}\n", 3, 18, "expected a non-empty name"),
    ("drop: [xi-jinpin]\n", 1, 8, "no entity 'xi-jinpin' to drop (did you mean 'xi-jinping'?)"),
    ("blockers: Kyoto Protocol\n", 1, 11, "blockers must be a list"),
    ("entities: [xi-jinping]\n", 1, 11, "entities must be a mapping"),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), ERRORS)
def test_overrides_errors_name_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_entities(path)
    error = raised.value
    assert (error.path, error.line, error.column) == (str(path), line, column), str(error)
    assert words in str(error)
    assert "\n" not in str(error)


def test_region_codes_may_come_from_the_users_regions_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "entities:\n  naha:\n    kind: place\n    country: OKINAWA\n    names: {en: [Naha]}\n",
    )
    with pytest.raises(ConfigError, match="unknown region code 'OKINAWA'"):
        load_entities(path)
    assert load_entities(path, codes={"OKINAWA", "JP"})["naha"].country == "OKINAWA"


def test_unreadable_or_empty_overrides(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_entities(tmp_path / "absent.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"blockers: [Caf\xe9]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_entities(tmp_path / "latin1.yaml")
    assert len(load_entities(write(tmp_path, "# nothing yet\n"))) == len(load_entities())


# --- the headline table the entity tagger will be held to ------------------------------------


def headline_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = YAML(typ="safe", pure=True).load(HEADLINES.read_text("utf-8"))[
        "headlines"
    ]
    return rows


def test_the_headline_table_covers_four_languages() -> None:
    rows = headline_rows()
    assert len(rows) >= 40
    assert len({row["title"] for row in rows}) == len(rows)
    per_lang: dict[str, int] = {}
    for row in rows:
        assert set(row) == {"lang", "title", "ids"}, row
        lang = row["lang"].split("-")[0]
        per_lang[lang] = per_lang.get(lang, 0) + 1
    assert set(per_lang) == set(LANGS) and min(per_lang.values()) >= 10, per_lang
    assert sum(1 for row in rows if not row["ids"]) >= 4  # names that must stay silent


@pytest.mark.parametrize("row", headline_rows(), ids=lambda row: row["title"][:40])
def test_each_headline_names_entities_that_exist(shipped: Entities, row: dict[str, Any]) -> None:
    title = fold(row["title"])
    for ident in row["ids"]:
        assert ident in shipped, f"unknown entity {ident!r}"
        names = [fold(name).strip() for _, name in shipped[ident].names]
        assert any(name in title for name in names), f"no name of {ident} in the headline"


# --- the region gazetteer: every country named in four languages ------------------------------


def test_every_country_has_names_in_four_languages_that_tag_it(gaz: Gazetteer) -> None:
    rows = json.loads((ROOT / "monitor/data/gazetteer/countries.json").read_text("utf-8"))
    assert len(rows["countries"]) == len(pycountry.countries) == 249
    conditional = {a.text for a in gaz.aliases if a.conditional}
    for row in rows["countries"]:
        for lang in LANGS:
            names = row[lang]
            assert names, f"{row['code']} has no {lang} name"
            # Names that are also words (Georgia, 수단 "means") tag only in context, by design.
            tags = any(row["code"] in gaz.tag(name, "") for name in names)
            assert tags or {fold(n) for n in names} <= conditional, (row["code"], lang, names)


def test_everyday_country_names_tag_their_country(gaz: Gazetteer) -> None:
    # The ISO catalogs give Japanese only the formal name of some countries (オーストラリア連邦):
    # the build takes CLDR's everyday names as well.
    for name, code in {
        "オーストラリア": "AU",
        "キルギス": "KG",
        "モンゴル": "MN",
        "ブルネイ": "BN",
        "브루나이": "BN",
        "吉尔吉斯斯坦": "KG",
        "北韓": "KP",
    }.items():
        assert gaz.tag(name, "") == (code,), name
    assert gaz.tag("북한 도발 저지", "") == ("KP",)  # 저지, CLDR's Jersey, is also "blocking"


def test_the_country_table_is_up_to_date() -> None:
    path = ROOT / "monitor/data/gazetteer/countries.json"
    assert gazetteer_build.render() == path.read_text("utf-8")

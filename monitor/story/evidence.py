"""Evidence a report carries that does not depend on its language: numbers and named
operations. (Regions, entities and rule concepts come ready from the tagger and the matcher.)

Numbers are read after `fold` (so full-width digits and `㎞` are plain) and normalised so that
the same figure meets itself across scripts: `650 km`, `約650キロ`, `650公里` and `650㎞` all
give `650km`; `$1.2 billion`, `12億ドル`, `12亿美元` and `12억 달러` all give `1.2e+09`; a
magnitude `M6.1`, `6.1级` or `규모 6.1` gives `6.1`. Small Han numerals before a counter
(`十人`) are read too. Dates and times of day (`3日`, `7時12分`, `7:12`, `March 3`, a year
alone) are dropped: the published time already says when, and every report of a day shares
them. Bare whole numbers below 10 are dropped as well (one missile, two dead): too common to
tell one event from another.

Codes are the letter-and-digit names of exercises and weapons (`2026A` in `Joint Blade-2026A`,
`H-6K`, `J-15`, which `J15` is too): written the same in every language, they are strong
evidence. Named operations are known exercise names in four languages (`Strait Thunder`,
`海峡雷霆`), and any name quoted together with a code (`“联合利刃-2026A”`), which then also
meets its own language's reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import ahocorasick_rs

from monitor.match.textnorm import fold

# Unit words that make a figure a distance; every spelling gives "km".
_KM = r"km|kilomet(?:er|re)s?|キロメートル|キロ|公里|千米|킬로미터|킬로"
# Multipliers written after a figure.
_SCALE = {
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "千": 1e3,
    "万": 1e4,
    "萬": 1e4,
    "만": 1e4,
    "億": 1e8,
    "亿": 1e8,
    "억": 1e8,
    "兆": 1e12,
    "조": 1e12,
}
_SCALES = "|".join(sorted(_SCALE, key=len, reverse=True))
# What after a figure makes it a date or a time of day, never evidence.
_DATE_AFTER = r"日|일|月|월|時|时|시|分|분|秒|초|am\b|pm\b|a\.m\.|p\.m\.|th\b|st\b|nd\b|rd\b|:"
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_FIGURE = re.compile(
    rf"(?<![0-9a-z.,:])(?:(?P<month>{_MONTHS})\.?\s+)?"  # "March 3": a date
    r"(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    rf"\s*(?:(?P<scale>{_SCALES})\s*)?"
    rf"(?:(?P<km>{_KM})|(?P<date>{_DATE_AFTER}))?",
)
_DIGIT = re.compile(r"\d")  # what every figure and code has (in any script's digits)
_MAGNITUDE = re.compile(r"(?<![a-z])m(?=\d)")  # M6.1: the figure is read, a model number (a321) not
_HAN_DIGITS = {"〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_HAN_DIGITS |= {"七": 7, "八": 8, "九": 9}
_HAN_UNITS = {"十": 10, "百": 100, "千": 1000}
# Han numerals are read only before a counter, where they cannot be part of a word (一時 is
# "for a while", 統一 "unification").
_HAN_NUMERALS = "〇一二两三四五六七八九十百千"
_HAN_COUNTERS = "人名隻只艘架発发枚台機机件"
_HAN_FIGURE = re.compile(f"([{_HAN_NUMERALS}]+)(?=[{_HAN_COUNTERS}])")
# `2026a`, `h-6k`, and `j15` as `j-15`: the Japanese press writes a weapon's name without the
# hyphen the others write (J15 and J-15 fighters). Unhyphenated, two digits at least: `q3`
# and `a1` are no weapons. A plural `s` goes (`_code`).
_CODE = re.compile(
    r"(?<![a-z0-9])("
    r"\d{2,4}[a-z]|[a-z]{1,3}-\d{1,4}[a-z]?"  # 2026a, h-6k
    r"|(?P<letters>[a-z]{1,3})(?P<rest>\d{2,4}[a-z]?)"  # j15
    r")(?![a-z0-9])"
)
_QUOTED = re.compile(r"[\"“「『]([^\"”」』]{2,40})[\"”」』]")
_NAME_BEFORE_CODE = re.compile(r"^(.+?)[\s\-‐–]*\d{4}[a-z]?$")

# Exercise names the press uses in every language (folded forms; Traditional Chinese folds
# to the Simplified). One id each, so that the four spellings meet.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "strait-thunder": ("strait thunder", "海峡雷霆", "해협뇌정"),
    "joint-sword": ("joint sword", "联合利剑", "連合利剣", "연합이검"),
    "justice-mission": ("justice mission", "正义使命", "正義使命", "정의사명"),
}


@dataclass(frozen=True)
class Read:
    """Everything this module reads from one text, folded once (folding is most of the cost)."""

    figures: set[tuple[str, bool]]
    codes: frozenset[str]
    operations: frozenset[str]
    sequel: str | None


def read(text: str) -> Read:
    return read_folded(fold(text))


def read_folded(folded: str) -> Read:
    """`read` of text already folded (`monitor.match.textnorm.fold`)."""
    digits = _DIGIT.search(folded) is not None  # once: every figure and code has one
    clues = _clues(folded)
    return Read(
        _figures(folded, digits, clues), _codes(folded, digits),
        _operations(folded, digits, clues), _sequel(folded, clues),
    )  # fmt: skip


@cache
def _clue_finder() -> tuple[ahocorasick_rs.AhoCorasick, tuple[str, ...]]:
    """One automaton for the strings whose presence says a closer look is needed: each
    sequel word (`SEQUEL`), each spelling of a known operation (its id), and each Han numeral
    followed by a counter (`HAN`, what `_HAN_FIGURE` needs). One pass over a text at C speed
    instead of a search per string: on text with Han or Hangul characters a search for an
    ASCII word converts the word first, each time."""
    clues = {word: SEQUEL for word in SEQUEL_WORDS}
    clues |= {name: op for op, names in _operation_names() for name in names}
    clues |= {d + c: HAN for d in _HAN_NUMERALS for c in _HAN_COUNTERS}
    patterns = sorted(clues)
    return ahocorasick_rs.AhoCorasick(patterns), tuple(clues[p] for p in patterns)


SEQUEL, HAN = "", "#"  # clue kinds beside the operation ids


def _clues(folded: str) -> frozenset[str]:
    """The kinds of clue (see `_clue_finder`) in `folded`."""
    automaton, kinds = _clue_finder()
    return frozenset(
        kinds[i] for i, _, _ in automaton.find_matches_as_indexes(folded, overlapping=True)
    )


def numbers(text: str) -> frozenset[str]:
    """The figures of `text`, normalised (see the module docstring)."""
    return frozenset(n for n, _ in figures(text))


def figures(text: str) -> set[tuple[str, bool]]:
    """The figures of `text`, each with whether it is specific: a distance, a decimal (a
    magnitude, a share), a scaled amount, or a whole number that is not round (`650`, `37`).
    Round whole numbers (`10`, `300`) are common to unrelated reports ("about 10 soldiers",
    "10 prefectures"): weaker evidence."""
    return _figures(fold(text))


def _has_digit(folded: str, digits: bool | None) -> bool:
    """Whether `folded` has a digit (`digits`, when the caller looked already)."""
    return _DIGIT.search(folded) is not None if digits is None else digits


def _figures(
    folded: str, digits: bool | None = None, clues: frozenset[str] | None = None
) -> set[tuple[str, bool]]:
    found: set[tuple[str, bool]] = set()
    if _has_digit(folded, digits):  # most texts have none: the pattern is a slow scan
        found = _digit_figures(_MAGNITUDE.sub(" ", folded))
    if HAN not in (_clues(folded) if clues is None else clues):
        return found
    for m in _HAN_FIGURE.finditer(folded):
        han = _han_value(m.group(1))
        if han is not None and han >= 10:
            found.add((f"{han:g}", han % 10 != 0))
    return found


def _digit_figures(folded: str) -> set[tuple[str, bool]]:
    found: set[tuple[str, bool]] = set()
    for m in _FIGURE.finditer(folded):
        if m["month"] or m["date"]:
            continue
        value = float(m["num"].replace(",", "")) * (_SCALE[m["scale"]] if m["scale"] else 1)
        if m["km"]:
            found.add((f"{value:g}km", True))
        elif "." in m["num"] or m["scale"]:
            found.add((f"{value:g}", True))
        elif value >= 10 and not (1900 <= value <= 2100 and len(m["num"]) == 4):
            found.add((f"{value:g}", value % 10 != 0))
    return found


# Words by which a report says it tells a development that follows an earlier one ("again",
# "a day after", 또, 再び, 再次): it is a new story, not more of the one before. Folded forms.
SEQUEL_WORDS = (
    "again",
    "another",
    "a day after",
    "days after",
    "the day after",
    "a day earlier",
    "再び",
    "再度",
    "またも",
    "前日",
    "に続き",
    "再次",
    "又一",
    "前一天",
    "또",
    "다시",
    "재차",
    "만에",
    "하루 전",
)
_SEQUEL = re.compile(
    "|".join(rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w) for w in SEQUEL_WORDS)
)


def sequel(text: str) -> str | None:
    """The first word of `text` saying it follows an earlier development, if any."""
    return _sequel(fold(text))


def _sequel(folded: str, clues: frozenset[str] | None = None) -> str | None:
    # The words are looked for plainly first (`_clues`): the pattern tries them all at every
    # character (~0.1 ms), and also needs an English one to be a whole word.
    if SEQUEL not in (_clues(folded) if clues is None else clues):
        return None
    m = _SEQUEL.search(folded)
    return m.group() if m else None


def _han_value(text: str) -> float | None:
    """`三` 3, `十` 10, `二十五` 25, `三百` 300; None for what is not a simple numeral."""
    total, digit = 0, None
    for char in text:
        if char in _HAN_DIGITS:
            if digit is not None:
                return None  # 二三: a range or a list, not one number
            digit = _HAN_DIGITS[char]
        else:
            total += (1 if digit is None else digit) * _HAN_UNITS[char]
            digit = None
    return float(total + (digit or 0))


def codes(text: str) -> frozenset[str]:
    """Letter-and-digit names (`2026a`, `h-6k`), folded."""
    return _codes(fold(text))


def _codes(folded: str, digits: bool | None = None) -> frozenset[str]:
    if not _has_digit(folded, digits):  # every code has one
        return frozenset()
    return frozenset(map(_code, _CODE.finditer(folded)))


def _code(m: re.Match[str]) -> str:
    code = f"{m['letters']}-{m['rest']}" if m["letters"] else m.group(1)
    if code[0].isalpha() and code.endswith("s") and code[-2].isdigit():
        return code[:-1]  # an English plural: F-15s are F-15 fighters
    return code


def operations(text: str) -> frozenset[str]:
    """Named operations: a known exercise's id, or a quoted name that carries a code."""
    return _operations(fold(text))


def _operations(
    folded: str, digits: bool | None = None, clues: frozenset[str] | None = None
) -> frozenset[str]:
    found = set(_clues(folded) if clues is None else clues) & OPERATIONS.keys()
    if not _has_digit(folded, digits):  # a quoted name counts only with its year
        return frozenset(found)
    for m in _QUOTED.finditer(folded):
        quoted = m.group(1).strip()
        named = _NAME_BEFORE_CODE.match(quoted)
        if named and not _known(named.group(1)):
            found.add(named.group(1).strip())
    return frozenset(found)


def _known(name: str) -> bool:
    return any(name in names for _, names in _operation_names())


@cache
def _operation_names() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((op, tuple(fold(n) for n in names)) for op, names in OPERATIONS.items())

"""Text normalisation shared by rules, region tagging and items: one function for both sides.

A rule term and an item's text must be folded the same way or they will never meet, so every
comparison in monitor goes through `fold`. It applies, in order:

1. NFKC: full-width `ＰＬＡ` becomes `PLA`, half-width kana become full-width.
2. casefold.
3. Latin diacritics dropped (`Khánh Hòa` -> `khanh hoa`), but only on Latin letters: the same
   decomposition would strip the dakuten from Japanese kana (`が` -> `か`), which changes words.
4. Traditional Chinese folded to Simplified (`臺灣` -> `台湾`), character by character, from
   OpenCC's table (`data/han_t2s.tsv`, made by `scripts/gen_han_t2s.py`).

`boundary_ok` then decides whether a hit found by substring search counts as a term match,
following the script of the term: Latin/Cyrillic/Greek need whole words (a possessive `'s`
after is fine), Han and kana match anywhere, Hangul needs a boundary before only (particles
follow the noun: `북한의`).

Tokens (for phrases and `NEAR/n`): a run of word characters is one token (a possessive `'s`
stays with it), each Han or kana character is one token, a run of Hangul is one token.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from enum import StrEnum
from functools import cache, lru_cache
from importlib import resources


class Script(StrEnum):
    WORD = "word"  # Latin, Cyrillic, Greek, digits: whole words
    HAN = "han"  # Han ideographs and kana: substrings
    HANGUL = "hangul"  # boundary before only


# Character classes as regex fragments, kept in step with `script_of` below.
_HAN_CHARS = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_HANGUL_CHARS = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
WORD_CLASS = f"[^\\W{_HAN_CHARS}{_HANGUL_CHARS}]"
HANGUL_CLASS = f"[{_HANGUL_CHARS}]"
_TOKEN = re.compile(f"{WORD_CLASS}+(?:['’]s(?!\\w))?|[{_HAN_CHARS}]|{HANGUL_CLASS}+")
_WORD_SPLIT = re.compile(r"[\W]+")

# A Latin letter that may carry a diacritic: a precomposed letter, or a base letter followed by
# combining marks (NFKC leaves those when no precomposed form exists).
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_LATIN_MARKED = re.compile(f"[\u00c0-\u024f\u1e00-\u1eff][{_MARKS}]*|[A-Za-z][{_MARKS}]+")


def _load_han_table() -> dict[int, str]:
    text = resources.files("monitor").joinpath("data/han_t2s.tsv").read_text(encoding="utf-8")
    table: dict[int, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            src, dst = line.split("\t")
            table[ord(src)] = dst
    return table


_T2S: dict[int, str] = _load_han_table()


@cache
def _traditional() -> re.Pattern[str]:
    """A character of the table, or any astral one (kept simple: those are rare). A class of
    ~3,700 characters takes milliseconds to compile: done on first use, not at import."""
    bmp = "".join(chr(code) for code in sorted(_T2S) if code <= 0xFFFF)
    return re.compile(f"[{bmp}\U00010000-\U0010ffff]")


def _simplified(text: str) -> str:
    """`text.translate(_T2S)`, skipped when no character of the table is there (Simplified
    Chinese, Korean): a regex scan runs at C speed, where `translate` with a dict pays a
    lookup per character (~40 us for a 500-character summary)."""
    return text.translate(_T2S) if _traditional().search(text) else text


@lru_cache(maxsize=4096)
def _bare_latin(chunk: str) -> str:
    decomposed = unicodedata.normalize("NFD", chunk)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def _strip_latin_marks(text: str) -> str:
    """Drop the diacritics of Latin letters; leave every other script (and kana) alone."""
    return _LATIN_MARKED.sub(lambda m: _bare_latin(m.group()), text)


def fold(text: str) -> str:
    """Normalise text for matching (see the module docstring). Idempotent."""
    if text.isascii():  # the common case for English feeds: NFKC and the rest change nothing
        return text.lower()
    # NFKC again after casefold: casefolding can leave text that is not NFKC (`ΐ`), and the
    # result must be a fixed point so a folded rule term meets folded text.
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _simplified(_strip_latin_marks(text))


@lru_cache(maxsize=65536)
def script_of(ch: str) -> Script | None:
    """The script class of one character, or None for punctuation/space/symbols."""
    if ch.isalnum() or ch == "_":
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            return Script.HANGUL
        if (
            0x3040 <= code <= 0x30FF  # kana
            or 0x3400 <= code <= 0x9FFF  # CJK ideographs (+ ext A)
            or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3FFFF
        ):
            return Script.HAN
        return Script.WORD
    return None


def term_script(term: str) -> Script:
    """The boundary rule of a folded term: that of its first letter (mixed terms are rare)."""
    for ch in term:
        script = script_of(ch)
        if script is not None:
            return script
    return Script.WORD


def _last_script(term: str) -> Script:
    return term_script(term[::-1])


def is_word_char(ch: str) -> bool:
    """Whether `ch` continues a Latin/Cyrillic/Greek word (the test for whole-word hits)."""
    if ch.isascii():
        return ch.isalnum() or ch == "_"
    return script_of(ch) is Script.WORD


def boundary_ok(text: str, start: int, end: int, script: Script, *, prefix: bool = False) -> bool:
    """Whether `text[start:end]` (a substring hit of a folded term) is a real term match.

    `prefix` marks a wildcard term (`drill*`): any word characters may follow it.
    """
    if script is Script.HAN:
        return True
    before_ok = start == 0 or script_of(text[start - 1]) is not script
    if script is Script.HANGUL or not before_ok:
        return before_ok
    # An apostrophe is not a word character, so a possessive (`Taiwan's`) passes here too.
    return prefix or end == len(text) or not is_word_char(text[end])


def split_words(text: str) -> list[str]:
    """The words of a folded term or phrase: split on anything that is not a letter or digit."""
    return [w for w in _WORD_SPLIT.split(text) if w]


def token_starts(text: str) -> list[int]:
    """Start offsets of the tokens of folded `text` (see the module docstring), ascending."""
    return [m.start() for m in _TOKEN.finditer(text)]


def _separator(prev: str, nxt: str) -> str:
    """What may stand between two words of a phrase: non-word characters only, possibly none
    where the script changes or in Han text; Hangul particles may trail a Hangul word."""
    before, after = _last_script(prev), term_script(nxt)
    tail = {Script.WORD: "(?:['’]s)?", Script.HANGUL: f"{HANGUL_CLASS}*", Script.HAN: ""}[before]
    gap = r"\W+" if before is after and before is not Script.HAN else r"\W*"
    return tail + gap


@cache
def phrase_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """A regex for folded `words` in order, without the boundaries at either end.

    It starts with a literal so the regex engine can skip ahead fast; the boundary tests are
    done by `find_phrase` (a big Unicode class in a lookbehind costs ~10 ms to compile and
    makes every search crawl).
    """
    parts = [re.escape(words[0])]
    for prev, word in itertools.pairwise(words):
        parts += [_separator(prev, word), re.escape(word)]
    return re.compile("".join(parts))


def find_phrase(
    text: str, words: tuple[str, ...], *, prefix: bool = False
) -> list[tuple[int, int]]:
    """The (start, end) spans in folded `text` of folded `words` in order, with the boundaries
    `boundary_ok` applies to a single term (`prefix`: the last word may be a prefix)."""
    first, last = term_script(words[0]), _last_script(words[-1])
    spans = []
    for m in phrase_pattern(words).finditer(text):
        start, end = m.span()
        after_ok = (
            prefix or last is not Script.WORD or end == len(text) or not is_word_char(text[end])
        )
        if after_ok and boundary_ok(text, start, end, first, prefix=True):
            spans.append((start, end))
    return spans


_HAN_RUN = re.compile(f"[{_HAN_CHARS}]+")


def _spaced(run: re.Match[str]) -> str:
    return f" {' '.join(run.group())} "


def search_text(text: str) -> str:
    """`text` folded, with a space around each Han or kana character: the form the store
    indexes and queries with, so a word tokenizer (SQLite's `unicode61`) makes each Han/kana
    character a token while Latin and Hangul words stay whole. Idempotent up to spacing.

    A regex over runs beats testing `script_of` per character by ~2.5x on Chinese text.
    """
    return spaced(fold(text))


def spaced(folded: str) -> str:
    """`search_text` of text folded already (the matcher's scan folds every item)."""
    return folded if folded.isascii() else _HAN_RUN.sub(_spaced, folded)


# --- Fast paths for the matcher: same results as the functions above, less work -------------

# `_LATIN_MARKED` needs a precomposed Latin letter or a combining mark, and every key of the
# Han table is a Han character: when a text has neither, those two passes change nothing.
_MAY_HAVE_MARKS = re.compile(f"[\u00c0-\u024f\u1e00-\u1eff{_MARKS}]")
_MAY_HAVE_HAN = re.compile(f"[{_HAN_CHARS}]")
# Typographic punctuation that NFKC, casefold and the other passes all leave alone: text made
# of ASCII and these folds like ASCII (kept to those the checks at import confirm).
_PLAIN_PUNCT = "".join(
    c
    for c in "‘’‚“”„–—•·«»‹›†‡§¶°′"
    if unicodedata.normalize("NFKC", c) == c == c.casefold() and not unicodedata.combining(c)
)
_ASCII_OR_PLAIN = re.compile(f"[\x00-\x7f{_PLAIN_PUNCT}]*")
_CJK = re.compile(f"[{_HAN_CHARS}{_HANGUL_CHARS}]")
_NON_ASCII_WORD_CHAR = re.compile(r"[^\W\x00-\x7f]")
# Every byte that is not an ASCII word character becomes a space: applied only to text whose
# non-ASCII characters are all separators, whose UTF-8 bytes are then all >= 0x80.
_SEPARATOR_BYTES = bytes(
    b if b < 128 and (chr(b).isalnum() or b == ord("_")) else 32 for b in range(256)
)
_WORD_RUN = re.compile(f"{WORD_CLASS}+")


def is_plain(text: str) -> bool:
    """Whether `text` is ASCII, or ASCII with typographic punctuation: then `fold` is
    `lower()`, and `word_bytes` needs no regex."""
    return text.isascii() or _ASCII_OR_PLAIN.fullmatch(text) is not None


def fold_quick(text: str) -> str:
    """`fold(text)`, several times faster on mostly-ASCII text: the passes that cannot
    change the text are skipped."""
    if is_plain(text):
        return text.lower()
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if _MAY_HAVE_MARKS.search(text):
        text = _strip_latin_marks(text)
    return _simplified(text) if _MAY_HAVE_HAN.search(text) else text


def has_cjk(text: str) -> bool:
    """Whether `text` has a character of the Han, kana or Hangul blocks (see `script_of`)."""
    return not text.isascii() and _CJK.search(text) is not None


def word_bytes(text: str, *, plain: bool = False) -> bytes:
    """The Latin/Cyrillic/Greek words of folded `text` (runs of `is_word_char` characters),
    in UTF-8, separated by one or more spaces (positions are not kept): what a whole-word
    search needs, made at C speed for `plain` text (see `is_plain`)."""
    if plain or text.isascii() or not _NON_ASCII_WORD_CHAR.search(text):
        # Every non-ASCII character here is a separator, so all its bytes (>= 0x80) are too.
        return text.encode().translate(_SEPARATOR_BYTES)
    return " ".join(_WORD_RUN.findall(text)).encode()


def plain_word_bytes(text: str) -> bytes | None:
    """`word_bytes(fold(text), plain=True)` when `text` is plain (see `is_plain`), made without
    folding it; None when it is not."""
    if not text.isascii():
        for ch in "’“”—‘–":  # the usual ones go cheaply; the rest take the regex
            text = text.replace(ch, " ")
        if not (text.isascii() or _ASCII_OR_PLAIN.fullmatch(text)):
            return None
    return text.lower().encode().translate(_SEPARATOR_BYTES)


def token_distance(text: str, first: tuple[int, int], second_start: int, limit: int) -> int:
    """How many tokens `second_start` is after the last character of the span `first`, as
    `token_starts` counts them, in folded `text`: 0 if they overlap, and any count above
    `limit` may be given as `limit + 1` (counting stops there).

    A term's span starts a token, so tokenizing from there finds the tokens a scan from the
    start of the text finds after it; only a span after an apostrophe may sit inside a token
    (`s` in `taiwan's's`, where the scans part ways), and takes the whole text.
    """
    start, end = first
    if start and text[start - 1] in "'’":
        return sum(end <= s <= second_start for s in token_starts(text))
    count = 0
    for match in _TOKEN.finditer(text, start):
        if match.start() > second_start or count > limit:
            break
        count += match.start() >= end
    return count


def find_word(text: str, word: str, *, prefix: bool = False) -> list[tuple[int, int]]:
    """The (start, end) spans of a folded Latin/Cyrillic/Greek `word` in folded `text` that
    `boundary_ok` accepts: whole words, or word starts when `prefix`."""
    spans = []
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        if boundary_ok(text, start, end, Script.WORD, prefix=prefix):
            spans.append((start, end))
        start = text.find(word, start + 1)
    return spans

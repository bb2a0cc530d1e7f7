"""Text normalisation shared by rules, region tagging and items: one function for both sides.

A rule term and an item's text must be folded the same way or they will never meet, so every
comparison in monitor goes through `fold`. It applies, in order:

1. NFKC: full-width `ＰＬＡ` becomes `PLA`, half-width kana become full-width.
2. casefold.
3. Latin diacritics dropped (`Khánh Hòa` -> `khanh hoa`), but only on Latin letters: the same
   decomposition would strip the dakuten from Japanese kana (`が` -> `か`), which changes words.
4. Traditional Chinese folded to Simplified (`臺灣` -> `台湾`), character by character.

`boundary_ok` then decides whether a hit found by substring search counts as a term match,
following the script of the term: Latin/Cyrillic/Greek need whole words (a possessive `'s`
after is fine), Han and kana match anywhere, Hangul needs a boundary before only (particles
follow the noun: `북한의`).
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from functools import lru_cache


class Script(StrEnum):
    WORD = "word"  # Latin, Cyrillic, Greek, digits: whole words
    HAN = "han"  # Han ideographs and kana: substrings
    HANGUL = "hangul"  # boundary before only


# Characters folded from Traditional to Simplified. Filled by `_han_table()`; kept as a
# translate table so folding stays one C-level pass over the text.
_T2S: dict[int, str] = {}


def _strip_latin_marks(text: str) -> str:
    """Drop combining marks that follow a Latin letter; leave every other script alone."""
    if text.isascii():
        return text
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and out and _is_latin(out[-1]):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


@lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def fold(text: str) -> str:
    """Normalise text for matching (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _strip_latin_marks(text)
    return text.translate(_T2S) if _T2S else text


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


def _is_word_char(ch: str) -> bool:
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
    return prefix or end == len(text) or not _is_word_char(text[end])

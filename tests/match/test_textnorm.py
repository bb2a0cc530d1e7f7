"""Normalisation and script-aware boundaries: the rules every rule term and item text share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.match.textnorm import (
    _T2S,
    Script,
    _simplified,
    boundary_ok,
    find_phrase,
    fold,
    split_words,
    term_script,
    token_starts,
)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ＰＬＡ", "pla"),  # full-width Latin (NFKC)
        ("ＰＬＡ　ＮＡＶＹ", "pla navy"),  # ideographic space too
        ("Taiwan STRAIT", "taiwan strait"),
        ("Straße", "strasse"),  # casefold, not lower
        ("Khánh Hòa", "khanh hoa"),  # Latin diacritics
        ("Việt Nam", "viet nam"),  # stacked marks
        ("Zoë Ångström Łódź", "zoe angstrom łodz"),  # ł has no decomposition: kept
        ("x\u0301", "x"),  # a combining mark with no precomposed form
        ("がぎぐ パピプ", "がぎぐ パピプ"),  # kana dakuten/handakuten kept
        ("ｶﾞｲﾑｼｮｳ", "ガイムショウ"),  # half-width kana become full-width, dakuten kept
        ("臺灣", "台湾"),  # Traditional -> Simplified
        ("國防部", "国防部"),
        ("韓國", "韩国"),
        ("對話", "对话"),
        ("北韓 北朝鮮", "北韩 北朝鲜"),
        ("台湾", "台湾"),  # Simplified is left alone
        ("Ελλάδα", "ελλάδα"),  # Greek keeps its accents: only Latin letters are stripped
        ("북한의", "북한의"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_traditional_and_simplified_fold_together() -> None:
    assert fold("臺灣海峽") == fold("台湾海峡")
    assert fold("中華民國國防部") == fold("中华民国国防部")


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    once = fold(text)
    assert fold(once) == once


@given(st.text(alphabet=st.characters(codec="ascii")))
def test_ascii_fast_path_agrees_with_the_general_path(text: str) -> None:
    # The non-ASCII path must give the same answer, or a rule term and a text would differ
    # only because one of them happened to contain a non-ASCII character.
    assert fold(text + "é")[:-1] == fold(text)


@pytest.mark.parametrize(
    ("term", "script"),
    [
        ("taiwan", Script.WORD),
        ("台湾", Script.HAN),
        ("ミサイル", Script.HAN),
        ("북한", Script.HANGUL),
        ("f-35", Script.WORD),
        ("-", Script.WORD),
        ("москва", Script.WORD),
    ],
)
def test_term_script(term: str, script: Script) -> None:
    assert term_script(term) is script


@pytest.mark.parametrize(
    ("text", "term", "prefix", "ok"),
    [
        ("taiwan's navy", "taiwan", False, True),
        ("taiwanese navy", "taiwan", False, False),
        ("taiwanese navy", "taiwan", True, True),
        ("in taiwan", "taiwan", False, True),
        ("pretaiwan", "taiwan", True, False),
        ("在taiwan的", "taiwan", False, True),  # a script change is a boundary
        ("北朝鲜の", "朝鲜", False, True),  # Han: substring
        ("북한의 미사일", "북한", False, True),  # Hangul: particles may follow
        ("남북한", "북한", False, False),  # ...but a boundary before is needed
        ("_taiwan", "taiwan", False, False),
    ],
)
def test_boundary_ok(text: str, term: str, prefix: bool, ok: bool) -> None:
    start = text.index(term)
    script = term_script(term)
    assert boundary_ok(text, start, start + len(term), script, prefix=prefix) is ok


def test_split_words() -> None:
    assert split_words(fold("Live-Fire")) == ["live", "fire"]
    assert split_words("u.s.") == ["u", "s"]
    assert split_words("台湾 海峡") == ["台湾", "海峡"]
    assert split_words("--") == []


def test_token_starts() -> None:
    text = fold("Taiwan's strait: 台湾海峡 북한의 미사일")
    starts = token_starts(text)
    tokens = [text[s:].split(" ")[0] for s in starts]
    assert tokens[:2] == ["taiwan's", "strait:"]
    assert len(starts) == 2 + 4 + 2  # two words, four Han characters, two Hangul words


@pytest.mark.parametrize(
    ("words", "prefix", "text", "found"),
    [
        (("taiwan", "strait"), False, "the taiwan strait.", True),
        (("taiwan", "strait"), False, "taiwan's strait", True),
        (("taiwan", "strait"), False, "taiwan -- strait", True),
        (("taiwan", "strait"), False, "taiwan, the strait", False),
        (("taiwan", "strait"), False, "taiwanstrait", False),
        (("taiwan", "strait"), False, "taiwan straits", False),
        (("taiwan", "strait"), False, "pretaiwan strait", False),
        (("taiwan", "str"), True, "taiwan straits", True),
        (("台湾", "海峡"), False, "台湾海峡", True),
        (("북한", "미사일"), False, "북한의 미사일", True),
        (("북한", "미사일"), False, "남북한 미사일", False),
        (("f", "35"), False, "an f-35 jet", True),
        (("f", "35"), False, "an f-350 truck", False),
        (("f", "35"), False, "在f-35的", True),
    ],
)
def test_find_phrase(words: tuple[str, ...], prefix: bool, text: str, found: bool) -> None:
    assert bool(find_phrase(text, words, prefix=prefix)) is found


def test_find_phrase_spans() -> None:
    text = "taiwan strait; the taiwan-strait"
    assert find_phrase(text, ("taiwan", "strait")) == [(0, 13), (19, 32)]


_TABLE = sorted(_T2S)
_HAN_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_TABLE).map(chr),  # traditional forms the table changes
        st.integers(0x4E00, 0x9FFF).map(chr),  # any ideograph, mostly left alone
        st.integers(0xAC00, 0xD7AF).map(chr),  # Hangul
        st.integers(0x20000, 0x2FFFF).map(chr),  # astral ideographs
        st.sampled_from(" ,。a"),
    ),
    max_size=60,
).map("".join)


@given(_HAN_TEXT)
def test_simplified_is_the_table_applied(text: str) -> None:
    # The regex shortcut must never skip a character the table would change.
    assert _simplified(text) == text.translate(_T2S)


def test_simplified_chinese_and_korean_are_left_as_they_are() -> None:
    assert fold("臺灣 國防部") == "台湾 国防部"
    for text in ("台湾国防部称", "한국 국방부"):
        assert _simplified(text) is text

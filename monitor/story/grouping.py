"""Which digest entries tell the same story: one event reported by several outlets.

Pure and deterministic: the same entries in any order give the same groups. Two entries are
the same story when they were published within `WINDOW` of each other and either

1. their canonical links are identical (one outlet syndicating another's article), or
2. their texts are near-duplicates: the weighted Jaccard similarity of their title + summary
   shingles reaches `SAME` while their titles share something (`TITLE_MIN`), or their titles
   alone reach `TITLE_SAME` (the only way when either has no summary). Reworded headlines
   keep only a few key words, so the summary is what tells a rewording from a different
   story that shares a name.

Shingles follow the script, after `monitor.textnorm.fold` (so Traditional and Simplified
Chinese, full- and half-width forms meet): Latin/Cyrillic/Greek text gives its content words
(stop words dropped, a plural `s` trimmed), since a reworded title keeps its key words but
rarely their order; Han and kana text gives character bigrams, as Chinese and Japanese have
no spaces (bigrams of hiragana alone are grammar, not content, and are dropped); Hangul text
gives character bigrams within each word, so a noun meets itself whatever particle follows.

Weights: a shingle that many *other* entries of the batch also have ("china", "taiwan",
"中国") says little about which story two entries tell; one that only these two share
("scarborough", "黄岩") says a lot. Each shingle weighs 1 + ln((n + B + 1) / (others + 1)),
`others` being how many entries besides the pair have it. A batch too small to tell common
from rare still knows one thing: place names (the gazetteer's) are everywhere in this news,
so they count as present in half of `BACKGROUND` (B) virtual entries.

Groups are the connected components of the "same story" relation (single linkage), found
with entries sorted by time then item id, so the result never depends on the input order.
Cross-language pairs (an English and a Japanese report) share almost no shingles and stay
apart: grouping them would need translation, which a pure function cannot do.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, lru_cache

from monitor.match.regions import load_gazetteer
from monitor.match.textnorm import HANGUL_CLASS, WORD_CLASS, fold
from monitor.models import DigestEntry

WINDOW = timedelta(days=3)
SAME = 0.12  # weighted Jaccard of title + summary shingles
TITLE_MIN = 0.05  # ... provided the titles themselves share something
TITLE_SAME = 0.5  # weighted Jaccard of the titles alone: near-duplicate headlines
# Virtual entries added to every batch, in half of which every place name appears: a place
# ("china", "中国") is weak evidence of sameness even in a batch too small to show it.
BACKGROUND = 20

_WORD = re.compile(f"{WORD_CLASS}+")
_HAN = re.compile("[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]+")
_HANGUL = re.compile(f"{HANGUL_CLASS}+")
_HIRAGANA = re.compile("[\u3040-\u309f]+")
# Words too common in headlines to say anything about which story it is.
_STOP_WORDS = """
    a an the and or but of in on at to for from by with as is are was were be been its it
    this that these those after before over under into about against amid says said say new
    not no will would could may has have had than then up out off near what how why who
    their his her our your we they he she you i s"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class _Doc:
    """An entry reduced to what the comparison needs."""

    index: int
    entry: DigestEntry
    link: str | None
    title: frozenset[str]
    summary: frozenset[str]


def shingles(text: str) -> frozenset[str]:
    """The shingles of `text` (see the module docstring): words, Han bigrams, Hangul bigrams."""
    return folded_shingles(fold(text))


def folded_shingles(
    folded: str, *, telling: bool = False, words: bytes | None = None
) -> frozenset[str]:
    """`shingles` of text already folded. With `telling`, only those worth comparing as text:
    no bare figure (figures are compared as numbers) and no pair with a hiragana character
    (grammar: の地, で震). `words`: the words of `folded` (`_WORD`'s runs) in UTF-8, separated
    by spaces, when the matcher's scan made them already (`Scan.words`)."""
    # Each distinct word once: a text repeats its words, and trimming is per word.
    distinct = set(_WORD.findall(folded) if words is None else words.decode().split())
    if telling:  # at ingest, for every item: each step of a word's test in one cached call
        out = set(map(_telling_word, distinct))
        out.discard("")
        for run in _HAN.findall(folded):
            out.update(_kana_free_pairs(run))
    else:
        out = {_trim(w) for w in distinct if len(w) > 1 and w not in _STOP}
        for run in _HAN.findall(folded):
            out.update(_han_bigrams(run))
    for run in _HANGUL.findall(folded):
        out.update(_bigrams(run))
    return frozenset(out)


@lru_cache(maxsize=65536)  # news repeats its words: a lookup costs a tenth of the tests
def _telling_word(word: str) -> str:
    """The word as compared (`_trim`), or "" for a stop word, a letter or a bare figure."""
    if len(word) < 2 or word in _STOP:
        return ""
    trimmed = _trim(word)
    return "" if trimmed.isdigit() else trimmed


@lru_cache(maxsize=65536)  # news repeats its words: a lookup costs a tenth of the trimming
def _trim(word: str) -> str:
    """A crude plural fold (`missiles` = `missile`): enough for reworded headlines."""
    if word.endswith("'s") or word.endswith("’s"):
        word = word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _bigrams(run: str) -> Iterable[str]:
    if len(run) == 1:
        return (run,)
    return map(operator.add, run, run[1:])  # each character and the next, at C speed


def _han_bigrams(run: str) -> Iterable[str]:
    return (pair for pair in _bigrams(run) if not _HIRAGANA.fullmatch(pair))


def _kana_free_pairs(run: str) -> Iterable[str]:
    """The bigrams of `run` without a hiragana character: those of the pieces between them
    (one regex split, where testing every pair cost a regex search each)."""
    if len(run) == 1:
        return () if _HIRAGANA.match(run) else (run,)
    return (pair for piece in _HIRAGANA.split(run) if len(piece) > 1 for pair in _bigrams(piece))


def same_story(a: DigestEntry, b: DigestEntry) -> bool:
    """Whether two entries tell the same story, judged as a batch of their own."""
    docs = [_doc(0, a), _doc(1, b)]
    return _same(docs[0], docs[1], _Weights(docs))


def story_groups(entries: Sequence[DigestEntry]) -> list[list[DigestEntry]]:
    """`entries` partitioned into stories; groups and their members ordered by time (oldest
    first), ties by item id."""
    docs = [_doc(i, e) for i, e in enumerate(sorted(entries, key=_order))]
    weights = _Weights(docs)
    parent = list(range(len(docs)))
    for i, j in _candidate_pairs(docs):
        root_i, root_j = _find(parent, i), _find(parent, j)
        if root_i != root_j and _same(docs[i], docs[j], weights):
            parent[max(root_i, root_j)] = min(root_i, root_j)
    groups: dict[int, list[DigestEntry]] = {}
    for doc in docs:
        groups.setdefault(_find(parent, doc.index), []).append(doc.entry)
    return list(groups.values())


class _Weights:
    """Shingle weights for one batch (see the module docstring)."""

    def __init__(self, docs: Sequence[_Doc]) -> None:
        self._count = Counter(s for doc in docs for s in doc.title | doc.summary)
        self._top = math.log(len(docs) + BACKGROUND + 1)
        self._places = place_shingles()

    def jaccard(self, a: frozenset[str], b: frozenset[str]) -> float:
        """Weighted |a ∩ b| / |a ∪ b| for two entries of the batch; 0 when both are empty."""
        shared = sum(self._weight(s, 2) for s in a & b)
        union = shared + sum(self._weight(s, 1) for s in a ^ b)
        return shared / union if union else 0.0

    def _weight(self, shingle: str, own: int) -> float:
        others = self._count[shingle] - own + (BACKGROUND // 2 if shingle in self._places else 0)
        return 1.0 + self._top - math.log(others + 1)


@cache
def place_shingles() -> frozenset[str]:
    """The shingles of every place name of the built-in gazetteer ("china", "中国", "북한")."""
    aliases = load_gazetteer().aliases
    return frozenset(s for a in aliases if a.codes and not a.context for s in shingles(a.text))


def _order(entry: DigestEntry) -> tuple[float, int]:
    return (entry.item.published.timestamp(), entry.item_id)


def _doc(index: int, entry: DigestEntry) -> _Doc:
    item = entry.item
    return _Doc(index, entry, item.link, shingles(item.title), shingles(item.summary))


def _candidate_pairs(docs: list[_Doc]) -> Iterable[tuple[int, int]]:
    """Pairs published within `WINDOW` of each other (`docs` is sorted by time)."""
    for i, doc in enumerate(docs):
        limit = doc.entry.item.published + WINDOW
        for j in range(i + 1, len(docs)):
            if docs[j].entry.item.published > limit:
                break
            yield i, j


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving keeps the trees flat
        i = parent[i]
    return i


def _same(a: _Doc, b: _Doc, weights: _Weights) -> bool:
    if abs(a.entry.item.published - b.entry.item.published) > WINDOW:
        return False
    if a.link is not None and a.link == b.link:
        return True
    title = weights.jaccard(a.title, b.title)
    if title >= TITLE_SAME:
        return True
    if title < TITLE_MIN or not (a.summary and b.summary):
        return False  # without both summaries, only near-duplicate titles are trusted
    return weights.jaccard(a.title | a.summary, b.title | b.summary) >= SAME

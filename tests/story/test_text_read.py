"""What a parse worker reads of a text for story linking (`profile.read_text`) is the same
however it gets there. Expected: the clue automaton that decides which slow patterns to run
(`evidence._clues`) never skips one that would have found something, checked against running
every pattern on every text; and shingles made of the matcher's words (`Scan.words`) are the
shingles the word pattern finds in the folded text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match.engine import Matcher
from monitor.match.textnorm import fold
from monitor.story import evidence
from monitor.story.evidence import OPERATIONS, SEQUEL_WORDS, read_folded
from monitor.story.grouping import folded_shingles
from monitor.story.profile import read_text
from tests.support.matchref import SEPARATORS, VOCAB

# Words that each wake one of the slow patterns, beside plain words of four scripts. The
# separators put them next to each other, so that a clue can sit inside or across another.
CLUE_WORDS = [
    *SEQUEL_WORDS, *(name for names in OPERATIONS.values() for name in names),
    *(f"{n}十{c}" for n in "一二两" for c in evidence._HAN_COUNTERS),
    "Again", "gains", "again2", "三人", "二十五隻", "一時", "統一", "十", "艘", "两架", "百",
    "650 km", "“Joint Blade-2026A”", "「联合利刃-2026A」", "H-6K", "March 3", "12億ドル",
]  # fmt: skip
texts = st.lists(
    st.tuples(st.sampled_from(CLUE_WORDS + VOCAB), st.sampled_from(SEPARATORS)), max_size=10
).map(lambda parts: "".join(w + s for w, s in parts))


def _every_pattern(folded: str) -> evidence.Read:
    """`read_folded` with no clue skipping any pattern: each one runs on the whole text."""
    figures = evidence._digit_figures(evidence._MAGNITUDE.sub(" ", folded))
    for m in evidence._HAN_FIGURE.finditer(folded):
        han = evidence._han_value(m.group(1))
        if han is not None and han >= 10:
            figures.add((f"{han:g}", han % 10 != 0))
    known = {op for op, names in evidence._operation_names() if any(n in folded for n in names)}
    for m in evidence._QUOTED.finditer(folded):
        named = evidence._NAME_BEFORE_CODE.match(m.group(1).strip())
        if named and not evidence._known(named.group(1)):
            known.add(named.group(1).strip())
    found = evidence._SEQUEL.search(folded)
    return evidence.Read(
        figures,
        frozenset(m.group(1) for m in evidence._CODE.finditer(folded)),
        frozenset(known),
        found.group() if found else None,
    )


@settings(max_examples=400, deadline=None)
@given(texts)
def test_the_clues_skip_no_pattern_that_would_find_something(text: str) -> None:
    folded = fold(text)
    assert read_folded(folded) == _every_pattern(folded)


def test_each_kind_of_clue_is_found_where_it_is() -> None:
    """The examples behind the property: one of each, found, and not found without it."""
    seen = read_folded(fold("艦艇三十艘が再び海峡雷霆の演習に"))
    assert seen.figures == {("30", False)} and seen.operations == {"strait-thunder"}
    assert seen.sequel == "再び"
    bare = read_folded(fold("艦艇が海峡の演習に"))
    assert not (bare.figures or bare.operations or bare.sequel)


@settings(max_examples=300, deadline=None)
@given(texts, texts)
def test_shingles_from_the_scans_words_are_those_of_the_folded_text(
    title: str, summary: str
) -> None:
    scan = Matcher.compile([]).scan(title, summary)
    folded = "\n".join(scan.texts)
    assert folded == fold(f"{title}\n{summary}")
    by_pattern = folded_shingles(folded, telling=True)
    assert folded_shingles(folded, telling=True, words=scan.words) == by_pattern
    assert read_text(folded, scan.words) == read_text(folded)

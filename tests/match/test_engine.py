"""The matching engine: a table of multilingual cases, scoring, scope, explanations, and property
tests of the fast paths against a direct evaluation (`tests/support/matchref.py`)."""

from __future__ import annotations

import gc
import itertools
import string
from bisect import bisect_right
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.match.engine import Matcher
from monitor.match.nodes import FIELDS, Term
from monitor.match.query import parse_query
from monitor.match.reader import _score_term
from monitor.match.rule import Hit, Match, Rule, Score
from monitor.match.textnorm import (
    fold,
    fold_quick,
    is_word_char,
    plain_word_bytes,
    token_distance,
    token_starts,
    word_bytes,
)
from monitor.models import Feed, Item
from tests.support.matchref import (
    VOCAB,
    reference,
    reference_aliases,
    reference_spans,
    rule_sets,
    texts_st,
)

NOW = datetime(2025, 11, 20, tzinfo=UTC)


def item(title: str, summary: str = "", **extra: object) -> Item:
    fields: dict[str, object] = dict(
        feed_id="feed", guid="g", link=None, title=title, summary=summary, html="", author=None,
        lang=None, published=NOW, first_seen=NOW, content_hash="",
    )  # fmt: skip
    fields.update(extra)
    return Item(**fields)  # type: ignore[arg-type]


def rule(query: str | None = None, rule_id: str = "r", **extra: object) -> Rule:
    tree = parse_query(query) if query else None
    return Rule(id=rule_id, title=rule_id, query=query, tree=tree, **extra)  # type: ignore[arg-type]


def score(threshold: float, **terms: float) -> Score:
    parsed = tuple((_score_term(k.replace("_", " ")), w) for k, w in terms.items())
    return Score(threshold, parsed)  # type: ignore[arg-type]


def matches(query: str, title: str, summary: str = "") -> bool:
    return bool(Matcher.compile([rule(query)]).match(item(title, summary)))


@pytest.mark.parametrize(
    ("query", "title", "summary", "expected"),
    [
        # English: whole words, possessive tolerated, case-insensitive.
        ("taiwan", "Taiwan's navy on alert", "", True),
        ("taiwan", "Taiwan’s navy on alert", "", True),
        ("taiwan", "Taiwanese navy on alert", "", False),
        ("taiwan", "TAIWAN", "", True),
        ("taiwan", "", "Drills near taiwan.", True),
        ("taiwan*", "Taiwanese navy", "", True),
        ("drill*", "Live-fire drilling ends", "", True),
        ("drill*", "Overdrilling ends", "", False),
        ("UN", "UN Security Council meets", "", True),
        ("UN", "Under pressure, funds run out", "", False),
        # Phrases: words in order, separated only by non-word characters.
        ('"Taiwan Strait"', "Ships cross the Taiwan Strait", "", True),
        ('"Taiwan Strait"', "Taiwan-Strait tensions", "", True),
        ('"Taiwan Strait"', "Taiwan's Strait patrols", "", True),
        ('"Taiwan Strait"', "Taiwan: Strait of worry", "", True),
        ('"Taiwan Strait"', "Taiwan and the Strait", "", False),
        ('"Taiwan Strait"', "Strait Taiwan", "", False),
        ('"Taiwan Strait"', "TaiwanStrait", "", False),
        ("cross-strait", "Cross–Strait ties", "", True),  # a term with punctuation is a phrase
        ("cross-strait", "cross strait ties", "", True),
        ("live-fire", "livefire exercise", "", False),
        # Full-width and diacritics, on either side.
        ("PLA", "ＰＬＡ海軍が演習", "", True),
        ("ＰＬＡ", "PLA navy", "", True),
        ('"Khanh Hoa"', "Storm hits Khánh Hòa province", "", True),
        ('"Khánh Hòa"', "Storm hits Khanh Hoa province", "", True),
        # Chinese: Traditional and Simplified fold together; Han terms are substrings.
        ("臺灣", "台湾海峡局势紧张", "", True),
        ("台湾", "臺灣海峽情勢緊張", "", True),
        ("台湾海峡", "解放军在臺灣海峽演習", "", True),
        ("北韩 OR 朝鲜", "北韓試射飛彈", "", True),
        # Japanese: substrings, kana dakuten matter.
        ("北朝鮮", "北朝鮮のミサイル発射", "", True),
        ("ミサイル", "弾道ミサイルを発射", "", True),
        ("バス", "ハスの花", "", False),
        ("韓国", "韓國總統", "", True),  # Japanese kanji folds like Traditional Chinese
        ("尖閣 OR 钓鱼岛", "釣魚島周辺海域", "", True),
        # Korean: a boundary before, particles after.
        ("북한", "북한의 미사일 발사", "", True),
        ("북한", "남북한 회담", "", False),
        ('"북한 미사일"', "북한의 미사일 발사", "", True),
        ("한국", "韓國", "", False),  # scripts are never transliterated
        # Mixed scripts: a script change is a word boundary. A key with Han inside goes to the
        # second automaton, with the boundary rule of its first letter.
        ("taiwan", "美国对Taiwan的政策", "", True),
        ("pla", "PLA海軍が演習", "", True),
        ("pla海軍", "PLA海軍が演習", "", True),
        ("pla海軍", "XPLA海軍", "", False),
        ("pla海軍x", "pla海軍xy", "", False),
        ("pla海軍x*", "pla海軍xy", "", True),
        # Typographic punctuation and other scripts take the other paths to the words.
        ("taiwan", "Taiwan’s “drills” — today", "", True),
        ("drill*", "“Drilling” resumes", "", True),
        ('"taiwan strait"', "«Taiwan — Strait»", "", True),
        ("москва", "Москва, «Кремль»", "", True),
        ("кремль", "Москва, «Кремль»", "", True),
        ("naive", "A naïve plan", "", True),
        ("taiwan", "Taiwan²", "", False),
        # NEAR counts tokens; a Han or kana character is one token.
        ("taiwan NEAR/4 blockade", "Taiwan faces a naval blockade", "", True),
        ("taiwan NEAR/3 blockade", "Taiwan faces a naval blockade", "", False),
        ("blockade NEAR/4 taiwan", "Taiwan faces a naval blockade", "", True),  # either order
        ("taiwan NEAR/1 strait", "Taiwan Strait", "", True),
        ("taiwan NEAR/10 blockade", "Taiwan", "blockade", False),  # not across fields
        ("台湾 NEAR/3 演习", "台湾周边演习", "", True),
        ("台湾 NEAR/2 演习", "台湾周边演习", "", False),
        ("(taiwan OR 台湾) NEAR/2 (drill* OR 演习)", "台湾演习", "", True),
        ('"Taiwan Strait" NEAR/4 drill*', "Drills held in the Taiwan Strait", "", True),
        ('"Taiwan Strait" NEAR/3 drill*', "Drills held in the Taiwan Strait", "", False),
        ("a NEAR/2 b NEAR/2 c", "a b c", "", True),
        ("a NEAR/2 b NEAR/2 c", "a b x x x c", "", False),
        # Fields.
        ("title:taiwan", "Drills", "Taiwan", False),
        ("summary:taiwan", "Drills", "Taiwan", True),
        ("title:(taiwan OR japan) AND summary:drills", "Japan", "drills", True),
        ('title:"Taiwan Strait"', "Strait", "Taiwan Strait", False),
        ("title:taiwan NEAR/3 drills", "Taiwan drills", "", True),
        # Boolean logic.
        ("taiwan AND NOT film", "Taiwan film festival", "", False),
        ("taiwan -film", "Taiwan drills", "", True),
        ("taiwan film OR japan", "Japan", "", True),
        ("taiwan (film OR japan)", "Japan", "", False),
    ],
)
def test_matching_table(query: str, title: str, summary: str, expected: bool) -> None:
    assert matches(query, title, summary) is expected


def test_scope_terms_use_the_item_and_feed() -> None:
    matcher = Matcher.compile(
        [
            rule("region:KP", "kp"),
            rule("lang:zh taiwan", "zh"),
            rule("feed:nhk x", "feed"),
            rule("tag:ASIA x", "tag"),
        ]
    )
    asia = Feed(id="nhk", url="http://127.0.0.1/", tags=("asia",))

    def ids(it: Item, feed: Feed | None = None) -> list[str]:
        return [m.rule_id for m in matcher.match(it, feed)]

    assert ids(item("Launch", regions=("KP",))) == ["kp"]  # no term needed at all
    assert ids(item("Taiwan", lang="zh-TW")) == ["zh"]
    assert ids(item("Taiwan", lang="ja")) == []
    assert ids(item("x", feed_id="nhk"), asia) == ["feed", "tag"]
    assert ids(item("x", feed_id="other")) == []  # no Feed: tag: cannot hold


def test_rule_feed_scope() -> None:
    matcher = Matcher.compile([rule("taiwan", feeds=("tag:asia", "reuters"))])
    it = item("Taiwan")
    assert matcher.match(it, Feed(id="x", url="u", tags=("Asia",)))
    assert matcher.match(it, Feed(id="reuters", url="u"))
    assert not matcher.match(it, Feed(id="x", url="u", tags=("europe",)))
    assert matcher.match(it, None)  # a dry run on bare text: the scope is not judged


def test_score_adds_distinct_terms_and_needs_the_threshold() -> None:
    r = rule(score=score(4, blockade=3, invasion=3, PLA=1, Taiwan_Strait=1))
    matcher = Matcher.compile([r])
    (found,) = matcher.match(item("PLA blockade", "PLA ships, PLA jets; blockade"))
    assert found.score == 4  # each term once, however often it appears
    assert not matcher.match(item("Blockade rumours"))  # 3 < 4
    (found,) = matcher.match(item("Blockade in the Taiwan-Strait"))
    assert found.score == 4


def test_negative_weights_and_query_plus_score() -> None:
    r = rule("taiwan", score=score(2, blockade=3, exercise=-2))
    matcher = Matcher.compile([r])
    assert matcher.match(item("Taiwan blockade"))
    assert not matcher.match(item("Taiwan blockade exercise"))  # 3 - 2 < 2
    assert not matcher.match(item("Blockade"))  # the query must hold too


def test_only_the_rules_with_hits_are_evaluated() -> None:
    rules = [rule(f"term{i} AND common", f"r{i}") for i in range(50)]
    rules.append(rule("region:TW", "tw"))
    matcher = Matcher.compile(rules)
    scan = matcher.scan("term7 common", "")
    # One automaton for everything; only r7 (and the scope-only rule) are candidates.
    assert [m.rule_id for m in matcher.match(item("term7 common", regions=("TW",)), scan=scan)] == [
        "r7",
        "tw",
    ]
    assert matcher.match(item("common")) == []


def test_a_rule_wakes_only_when_its_two_rarest_clauses_have_hits() -> None:
    matcher = Matcher.compile(
        [
            rule("(blockade OR quarantine) AND (taiwan OR kinmen) AND NOT film", "two"),
            rule('"taiwan strait"', "phrase"),  # each word of a phrase is a clause
            rule("pla OR navy", "one"),
        ]
    )

    def woken(title: str) -> list[int]:
        return matcher.candidates(matcher.scan(title, ""))

    assert woken("Kinmen quarantine") == [0]
    assert woken("Taiwan film") == []  # `taiwan` alone wakes nothing
    assert woken("Strait of Taiwan") == [1]  # both words, in any order: the regex decides
    assert woken("Navy") == [2]
    assert [m.rule_id for m in matcher.match(item("Strait of Taiwan"))] == []


def test_gc_is_paused_only_while_compiling() -> None:
    assert gc.isenabled()
    Matcher.compile([rule("taiwan")])
    assert gc.isenabled()
    gc.disable()
    try:
        Matcher.compile([rule("taiwan")])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_explain_lists_every_hit_in_order() -> None:
    r = rule('("Taiwan Strait" OR 台湾海峡) AND (drill* OR PLA) AND NOT film', "tsm")
    (found,) = Matcher.compile([r]).match(item("PLA drills", "Ships in the Taiwan Strait"))
    assert found == Match(
        "tsm",
        0.0,
        (
            Hit("PLA", "title", 0, 3),
            Hit("drill*", "title", 4, 9),
            Hit('"Taiwan Strait"', "summary", 13, 26),
        ),
    )
    assert found.explain() == (
        'tsm (score 0): PLA title@0-3, drill* title@4-9, "Taiwan Strait" summary@13-26'
    )


def test_negated_terms_are_not_reported_as_hits() -> None:
    (found,) = Matcher.compile([rule("taiwan OR japan -film")]).match(item("Taiwan film"))
    assert [h.term for h in found.hits] == ["taiwan"]


def test_aliases_share_the_scan() -> None:
    matcher = Matcher.compile([rule("taiwan")], aliases=["Niger", "Nigeria", "臺北", "북한"])
    scan = matcher.scan("Nigeria and Taipei 台北", "북한의 발표")
    assert sorted(a for a, *_ in scan.alias_hits) == ["nigeria", "台北", "북한"]
    assert ("nigeria", 0, 0, 7) in scan.alias_hits


def test_aliases_of_several_words_or_odd_starts() -> None:
    aliases = ["South Sudan", "Sudan", "Côte d'Ivoire", "(DPRK)", "U.S."]
    matcher = Matcher.compile([], aliases=aliases)
    scan = matcher.scan("South Sudan and Sudan", "Côte d’Ivoire, cote d'ivoire (DPRK) U.S.A. u.s.")
    assert scan.alias_hits == [
        ("south sudan", 0, 0, 11),
        ("sudan", 0, 6, 11),  # every whole match: longest-match is the tagger's business
        ("sudan", 0, 16, 21),
        ("cote d'ivoire", 1, 15, 28),  # the apostrophe must be the same
        ("(dprk)", 1, 29, 35),
        ("u.s.", 1, 43, 47),  # not in `U.S.A.`: a letter follows
    ]


def test_aliases_that_start_with_punctuation_are_keyed_by_a_word() -> None:
    # Keyed by a word like any Latin alias. In the automaton for Han and Hangul keys, one key
    # without them made that automaton run over every item, plain English included.
    matcher = Matcher.compile([], aliases=["'s-Hertogenbosch", "(DPRK)", "北韓"])
    assert not matcher._cjk_always
    scan = matcher.scan("Fair in 's-Hertogenbosch", "(DPRK) 北韓")
    assert scan.alias_hits == [
        ("'s-hertogenbosch", 0, 8, 24),
        ("(dprk)", 1, 0, 6),
        ("北韩", 1, 7, 9),
    ]


def test_an_empty_matcher_matches_nothing() -> None:
    assert Matcher.compile([]).match(item("anything")) == []


def test_same_term_in_many_rules_is_one_key() -> None:
    rules = [rule("taiwan", "a"), rule("Taiwan", "b"), rule("TAIWAN*", "c")]
    found = Matcher.compile(rules).match(item("Taiwanese"))
    assert [m.rule_id for m in found] == ["c"]


# --- The fast paths against a direct evaluation (tests/support/matchref.py) ----------------------


@settings(max_examples=300, deadline=None)
@given(
    rule_sets(),
    texts_st,
    texts_st,
    st.booleans(),
    st.lists(st.sampled_from([*VOCAB, "south korea", "u.s.", "(dprk)", "  "]), max_size=4),
)
def test_matcher_agrees_with_a_direct_evaluation(
    rule_list: list[Rule], title_parts: list[tuple[str, str]],
    summary_parts: list[tuple[str, str]], tagged: bool, aliases: list[str],
) -> None:  # fmt: skip
    title = "".join(w + s for w, s in title_parts)
    summary = "".join(w + s for w, s in summary_parts)
    it = item(title, summary, regions=("TW",) if tagged else ())
    matcher = Matcher.compile(rule_list, aliases)
    found = {m.rule_id: m for m in matcher.match(it)}
    for r in rule_list:
        expected = reference(r, it)
        got = found.get(r.id)
        assert (got is not None) == (expected is not None), (r.query, r.score, title, summary)
        if got is not None and expected is not None:
            assert got.score == expected[0]
            assert sorted((FIELDS.index(h.field), h.start, h.end) for h in got.hits) == expected[1]
    scan = matcher.scan(title, summary)
    assert scan.alias_hits == reference_aliases(aliases, it)


def _tokens(text: str) -> list[str]:
    """Runs of `is_word_char` characters, found one character at a time."""
    return ["".join(g) for k, g in itertools.groupby(text, key=is_word_char) if k]


@settings(max_examples=300, deadline=None)
@given(texts_st)
def test_fast_folding_and_word_lists_agree_with_fold(parts: list[tuple[str, str]]) -> None:
    text = "".join(w + s for w, s in parts)
    folded = fold(text)
    assert fold_quick(text) == folded
    expected = [w.encode() for w in _tokens(folded)]
    assert word_bytes(folded).split() == expected
    plain = plain_word_bytes(text)
    assert plain is None or plain.split() == expected
    assert plain is not None or not (text.isascii() or set(text) <= set(string.printable + "’“”—"))


@settings(max_examples=300, deadline=None)
@given(texts_st, st.data())
def test_token_distance_agrees_with_token_starts(
    parts: list[tuple[str, str]], data: st.DataObject
) -> None:
    text = fold("".join(w + s for w, s in parts))
    # Spans as terms produce them: every whole-word hit of every folded vocabulary word.
    spans = sorted({span for w in VOCAB for span in reference_spans((text, ""), Term(w), (0,))})
    assume(len(spans) >= 2)
    (_, s1, e1), (_, s2, _) = sorted(
        data.draw(st.lists(st.sampled_from(spans), min_size=2, max_size=2))
    )
    starts = token_starts(text)
    expected = max(0, bisect_right(starts, s2) - bisect_right(starts, e1 - 1))
    limit = data.draw(st.integers(0, 5))
    assert min(token_distance(text, (s1, e1), s2, limit), limit + 1) == min(expected, limit + 1)


def test_token_distance_after_an_apostrophe_counts_from_the_start() -> None:
    # `s` (13-14) sits inside the token `taiwantaiwan's`; read from there, `s's` is one token.
    assert token_starts("taiwantaiwan's's ") == [0, 15]
    assert token_distance("taiwantaiwan's's ", (13, 14), 15, 5) == 1
    assert token_distance("taiwan's drills", (0, 6), 9, 5) == 1

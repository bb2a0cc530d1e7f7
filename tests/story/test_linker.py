"""The story linker (monitor/story/linker.py): decisions on hand-made reports, pure logic.

Expected: a report sharing rare evidence (a place, a figure, a rule) with an open story joins
it and says why in short phrases; one sharing only countries starts its own story; two
look-alike developments (quakes at different places, a second incident "a day after" the
first) stay apart; a tie goes to the same story whatever order the stories came in; deciding
records nothing; `load` rebuilds what `add` built; `forget_before` (and the linker on its
own) keeps memory to the stories of the window; `report_of` reads a tagged item.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from monitor.models import EntityTag, Item
from monitor.story.linker import Linker, Report, _bounded, report_of
from monitor.story.profile import KIND_WEIGHT, Profile, evidence_of, kind
from monitor.story.scoring import CANDIDATE_MAX, Scorer

T0 = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


def report(
    item_id: int,
    title: str,
    *,
    lang: str = "en",
    hours: float = 0,
    summary: str = "",
    feed: str = "wire",
    **evidence: tuple[str, ...],
) -> Report:
    """A report; `evidence` holds its regions, entities, concepts and places."""
    return Report(
        item_id=item_id,
        feed_id=feed,
        lang=lang,
        published=T0 + timedelta(hours=hours),
        title=title,
        summary=summary,
        regions=evidence.get("regions", ()),
        entities=evidence.get("entities", ()),
        concepts=evidence.get("concepts", ()),
        places=evidence.get("places", ()),
    )


LAUNCH: dict[str, tuple[str, ...]] = {
    "regions": ("KP", "KR"),
    "entities": ("kp-sunan", "kr-jcs"),
    "concepts": ("korea-missiles",),
    "places": ("kp-sunan",),
}


def background(linker: Linker, first_id: int = 1000) -> None:
    """Unrelated open stories, so that rarity means something."""
    for n in range(12):
        linker.add(
            first_id + n,
            report(
                first_id + n,
                f"Unrelated story {n}",
                hours=-3,
                regions=("CN", "JP", "KR")[n % 3 :],
                entities=(f"other-{n}",),
                concepts=(f"rule-{n % 4}",),
            ),
        )


def test_an_empty_linker_starts_a_story_and_says_nothing() -> None:
    decision = Linker().decide(report(1, "North Korea fires a missile", **LAUNCH))
    assert decision.story is None and decision.why == ()


def test_a_report_in_another_language_joins_on_shared_evidence_and_says_why() -> None:
    linker = Linker()
    background(linker)
    linker.add(1, report(1, "North Korea fires missile that flew 650 km", **LAUNCH))
    ko = report(2, "북한, 탄도미사일 발사…약 650㎞ 비행", lang="ko", hours=0.5, **LAUNCH)
    decision = linker.decide(ko)
    assert decision.story == 1
    assert decision.score >= 0.3
    assert {"entity kp-sunan", "number 650km", "rule korea-missiles"} <= set(decision.why)
    assert decision.why[-1] == "30 min after"


def test_same_language_words_are_named_in_the_why() -> None:
    linker = Linker()
    background(linker)
    first = "北 순안서 탄도미사일 발사"
    linker.add(1, report(1, first, lang="ko", **LAUNCH))
    decision = linker.decide(
        report(2, "합참 순안 탄도미사일 발사 확인", lang="ko", hours=1, **LAUNCH)
    )
    assert decision.story == 1
    words = next(w for w in decision.why if w.startswith("same words: "))
    shown = set(words.removeprefix("same words: ").split(", "))
    assert len(shown) == 3 and shown <= {"순안", "탄도", "도미", "미사", "사일", "발사"}
    assert decision.why[-1] == "1 h after"


def test_sharing_only_countries_starts_a_new_story() -> None:
    linker = Linker()
    background(linker)
    linker.add(1, report(1, "Tokyo and Beijing trade barbs", regions=("CN", "JP")))
    decision = linker.decide(report(2, "Typhoon nears Okinawa", hours=1, regions=("CN", "JP")))
    assert decision.story is None
    assert decision.why == ()  # countries alone never make a candidate


def test_two_quakes_at_different_places_the_same_day_stay_apart() -> None:
    linker = Linker()
    background(linker)
    hualien: dict[str, tuple[str, ...]] = {
        "regions": ("TW",),
        "concepts": ("asia-disasters",),
        "entities": ("jma",),
    }
    linker.add(
        1,
        report(1, "M6.1 quake off Hualien", places=("tw-hualien",), **hualien),
    )
    miyagi = report(
        2,
        "M5.8 quake off Miyagi",
        hours=3,
        regions=("JP",),
        concepts=("asia-disasters",),
        entities=("jma", "jp-miyagi"),
        places=("jp-miyagi",),
    )
    decision = linker.decide(miyagi)
    assert decision.story is None
    assert decision.why and decision.why[0].startswith("closest story 1 scored")


def test_a_report_saying_it_follows_an_earlier_development_starts_its_own_story() -> None:
    linker = Linker()
    background(linker)
    border: dict[str, tuple[str, ...]] = {
        "regions": ("KP", "KR"),
        "entities": ("kpa", "kr-dmz"),
        "concepts": ("border",),
    }
    linker.add(1, report(1, "Soldiers cross the border, warning shots fired", **border))
    later = report(2, "Soldier crosses the border", hours=8, **border)
    assert linker.decide(later).story == 1
    sequel = report(3, "Soldier crosses the border a day after incursion", hours=8, **border)
    assert linker.decide(sequel).story is None
    soon = report(4, "Soldiers cross the border again, officials say", hours=1, **border)
    assert linker.decide(soon).story == 1  # "again" within hours of the start is the same news


def test_a_story_past_the_window_is_not_joined() -> None:
    linker = Linker(window=timedelta(hours=48))
    background(linker)
    linker.add(1, report(1, "Launch", **LAUNCH))
    assert linker.decide(report(2, "Launch", hours=49, **LAUNCH)).story is None


def test_a_tie_goes_to_the_same_story_whatever_order_the_stories_came_in() -> None:
    twins = [report(n, "Launch from Sunan", **LAUNCH) for n in (1, 2)]
    chosen = set()
    for order in (twins, twins[::-1]):
        linker = Linker()
        background(linker)
        for r in order:
            linker.add(r.item_id, r)
        chosen.add(linker.decide(report(3, "Launch from Sunan", hours=1, **LAUNCH)).story)
    assert chosen == {1}


def test_deciding_records_nothing_and_load_rebuilds_what_add_built() -> None:
    pairs = [(1, report(1, "Launch 650 km", **LAUNCH)), (1, report(2, "Launch", hours=1, **LAUNCH))]
    built, loaded = Linker(), Linker()
    for story, r in pairs:
        built.add(story, r)
    loaded.load(pairs)
    probe = report(3, "Missile flew 650 km", lang="ja", hours=2, **LAUNCH)
    first = built.decide(probe)
    assert built.decide(probe) == first == loaded.decide(probe)
    assert built.open_stories() == loaded.open_stories() == 1
    assert built.index_size() == loaded.index_size()


def test_forget_before_drops_old_stories_and_every_index_key_they_held() -> None:
    linker = Linker()
    for n in range(50):
        linker.add(n, report(n, f"Story {n} at place{n}", hours=n, entities=(f"e{n}",)))
    linker.forget_before(T0 + timedelta(hours=40))
    assert linker.open_stories() == 10
    linker.forget_before(T0 + timedelta(days=30))
    assert linker.open_stories() == 0 and linker.index_size() == 0


def test_memory_stays_bounded_by_the_window_even_without_forget() -> None:
    linker = Linker(window=timedelta(hours=48))
    for n in range(24 * 20):  # twenty days, a new story every hour
        linker.add(n, report(n, f"Story {n}", hours=n, entities=(f"e{n}",)))
    # Kept: stories within two windows of the newest report (plus an hour of slack).
    assert linker.open_stories() <= 2 * 48 + 2
    assert linker.index_size() <= 3 * linker.open_stories()


def test_report_of_reads_a_tagged_item() -> None:
    item = Item(
        feed_id="wire",
        guid="g1",
        link=None,
        title="Missile launched from Sunan, Seoul says",
        summary="",
        html="",
        author=None,
        lang="en",
        published=T0,
        first_seen=T0,
        content_hash="h",
        regions=("KP", "KR"),
        entities=(
            EntityTag("kp-sunan", "place", "title", 22, 27),
            EntityTag("kr-seoul", "place", "title", 29, 34),
            EntityTag("kp-sunan", "place", "summary", 0, 5),
            EntityTag("kr-jcs", "org", "summary", 9, 12),
        ),
    )
    r = report_of(7, item, ["korea-missiles", "asia-alerts", "korea-missiles"])
    assert (r.item_id, r.feed_id, r.lang, r.published) == (7, "wire", "en", T0)
    assert r.entities == ("kp-sunan", "kr-seoul", "kr-jcs")
    assert r.concepts == ("asia-alerts", "korea-missiles")
    assert r.places == ("kp-sunan",)  # a capital stands for its government, not a place


def test_a_shared_capital_is_enough_only_while_the_news_is_breaking() -> None:
    linker = Linker()
    background(linker)
    meeting: dict[str, tuple[str, ...]] = {"regions": ("CN", "JP", "KR"), "entities": ("jp-tokyo",)}
    linker.add(1, report(1, "China, Japan and South Korea ministers meet in Tokyo", **meeting))
    same_morning = linker.decide(report(2, "中日韩外长会在东京举行", lang="zh", hours=1, **meeting))
    assert same_morning.story == 1 and "entity jp-tokyo" in same_morning.why
    next_day = linker.decide(report(3, "東京で今季一番の冷え込み", lang="ja", hours=6, **meeting))
    assert next_day.story is None


def test_a_story_opened_before_a_burst_of_others_is_judged_with_todays_weights() -> None:
    """A first poll opens hundreds of stories at once: every key grows rarer-looking at first
    and commoner later, so lengths kept from when a story was small are stale. The decision
    uses today's: one shared entity out of the story's four does not join it."""
    linker = Linker()
    linker.add(1, report(1, "First", entities=("a", "b", "c", "d"), concepts=("r",)))
    for n in range(2, 400):
        linker.add(n, report(n, f"Other {n}", hours=0.01 * n, entities=(f"u{n}", f"v{n}")))
    thin = report(999, "Thin", hours=5, entities=("a", "p", "q"), concepts=("r",))
    decision = linker.decide(thin)
    assert decision.story is None
    assert decision.score < 0.3


def _fresh_length(linker: Linker, story: int, lang: str | None) -> float:
    """A story's vector length measured from scratch, with today's weights."""
    scorer = Scorer(linker._rarity, linker.open_stories())
    profile = linker._stories[story]
    if lang is None:
        parts = [
            KIND_WEIGHT[kind(f)] * scorer.weight(f) * n / profile.size
            for f, n in profile.features.items()
        ]
    else:
        words = profile.words[lang]
        parts = [scorer.weight(f"{lang}:{w}") * n / profile.langs[lang] for w, n in words.items()]
    return math.sqrt(sum(p * p for p in parts))


def test_kept_lengths_are_exact_until_keys_spread_and_a_refresh_makes_them_exact_again() -> None:
    linker = Linker()
    background(linker)
    linker.add(1, report(1, "Launch from Sunan 650 km", **LAUNCH))
    linker.add(1, report(2, "Launch from Sunan toward the sea", hours=1, **LAUNCH))
    scorer = Scorer(linker._rarity, linker.open_stories())
    story = linker._stories[1]
    for lang in (None, "en"):
        assert scorer._story_norm(story, lang) == pytest.approx(_fresh_length(linker, 1, lang))
    # Another story takes the same keys: story 1's kept lengths weigh them as they were...
    linker.add(2, report(3, "Launch from Sunan 650 km toward the sea", hours=2, **LAUNCH))
    scorer = Scorer(linker._rarity, linker.open_stories())
    assert scorer._story_norm(story, "en") != pytest.approx(_fresh_length(linker, 1, "en"))
    # ...until a decision measures them afresh.
    linker._rarity.refresh(story, "en")
    for lang in (None, "en"):
        assert scorer._story_norm(story, lang) == pytest.approx(_fresh_length(linker, 1, lang))


def test_a_key_many_stories_hold_finds_no_candidates() -> None:
    linker = Linker()
    held = CANDIDATE_MAX + 2  # fewer than half the open stories: only the cap leaves it out
    for n in range(1, 2 * held + 10):
        concepts = ("korea-missiles",) if n <= held else ()
        linker.add(n, report(n, f"Topic alpha{n}", concepts=concepts, regions=("KP",)))
    ev = evidence_of(report(999, "Something else", hours=1, concepts=("korea-missiles",)))
    scorer = Scorer(linker._rarity, linker.open_stories())
    assert linker._candidates(ev, scorer) == []
    few = evidence_of(report(998, "Topic alpha3", hours=1, concepts=("korea-missiles",)))
    assert [p.id for _, p in linker._candidates(few, scorer)] == [3]  # its rare word still does


def test_stories_that_share_too_little_to_reach_a_join_are_not_scored() -> None:
    linker = Linker()
    background(linker)  # some share a word ("story") or a country with the report, no more
    linker.add(1, report(1, "Launch from Sunan 650 km", **LAUNCH))
    # Its rule rule-1 finds three background stories, which share little else with it.
    summary = "It flew 650 km; 37 ships, 4,512 troops and H-6K bombers; a $1.2 billion drill"
    launch = {**LAUNCH, "concepts": ("rule-1", *LAUNCH["concepts"])}
    ev = evidence_of(report(2, "Launch from Sunan, a story", hours=1, summary=summary, **launch))
    scorer = Scorer(linker._rarity, linker.open_stories())
    assert [p.id for _, p in linker._candidates(ev, scorer)] == [1]
    linker.add(5, report(5, "Ferry news", hours=-1))
    other = "ferry timetable changes harbour passengers weather delays ticket office"
    alone = evidence_of(report(3, "A ferry story", hours=1, summary=other, regions=("KR",)))
    # One word in ten can't reach a join: the first is still scored, to name the closest.
    assert [p.id for _, p in linker._candidates(alone, scorer)] == [5]


def test_lengths_kept_exact_by_growing_are_not_measured_again_until_a_key_spreads() -> None:
    linker = Linker()
    background(linker)
    linker.add(1, report(1, "Launch from Sunan 650 km", **LAUNCH))
    story, rarity = linker._stories[1], linker._rarity
    assert rarity.fresh(story, "") and rarity.fresh(story, "en")
    # A copy brings no key new to any story: no rarity moves, the lengths stay exact.
    linker.add(1, report(2, "Launch from Sunan 650 km", hours=1, **LAUNCH))
    assert rarity.fresh(story, "") and rarity.fresh(story, "en")
    # Another story takes its keys: they grow commoner, its kept lengths are stale...
    linker.add(2, report(3, "Launch from Sunan 650 km toward the sea", hours=2, **LAUNCH))
    assert not rarity.fresh(story, "en")
    rarity.refresh(story, "en")  # ...until measured afresh
    assert rarity.fresh(story, "") and rarity.fresh(story, "en")
    scorer = Scorer(rarity, linker.open_stories())
    assert scorer._story_norm(story, "en") == pytest.approx(_fresh_length(linker, 1, "en"))


class _Fits:
    """A scorer with set fits per story, counting what it is asked (pure logic)."""

    def __init__(self, fits: dict[int, float]) -> None:
        self.fits, self.asked = fits, []

    def score(self, ev: object, story: Profile, explain: bool = True) -> tuple[float, list[str]]:
        self.asked.append(story.id)
        return self.fits[story.id], []


def test_a_candidate_whose_bound_is_below_near_the_best_fit_so_far_is_not_scored() -> None:
    stories = [Profile(n, T0, T0) for n in (1, 2, 3)]
    fits = _Fits({1: 0.9, 2: 0.5, 3: 0.69})
    # Bounds: 0.8 may still be near 0.9 (from 0.72), 0.7 may not, whatever its fit.
    candidates = [(0.7, stories[2]), (1.0, stories[0]), (0.8, stories[1])]
    ev = evidence_of(report(9, "Launch", **LAUNCH))
    scored = _bounded(ev, cast(Scorer, fits), candidates)
    assert fits.asked == [1, 2] and [(s, p.id) for s, p in scored] == [(0.9, 1), (0.5, 2)]


def test_a_new_story_names_as_closest_the_story_sharing_the_most() -> None:
    # Neither open story could be joined (each shares a few of the report's forty names), so
    # the decision names the one sharing more: the rarity-weighted sum that ranks candidates,
    # which is worked out only when it decides something.
    linker = Linker()
    background(linker)
    names = tuple(f"person-{n}" for n in range(40))
    linker.add(1, report(1, "Envoy meets a delegation", entities=names[:1]))
    linker.add(2, report(2, "Delegation tours the port", entities=names[1:3]))
    decision = linker.decide(report(3, "A long list of names", hours=1, entities=names))
    assert decision.story is None
    assert decision.why and decision.why[0].startswith("closest story 2 scored"), decision

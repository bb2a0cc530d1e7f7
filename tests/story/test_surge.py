"""Surge detection, pure: story thresholds and window, volume factor, minimum and trailing mean,
cooldown, and the words that say why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.story.surge import (
    StoryReport,
    StorySettings,
    Surge,
    SurgeSettings,
    VolumeCount,
    VolumeSettings,
    cooled,
    minutes,
    story_surge,
    volume_surges,
    volume_why,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STORY = StorySettings()  # outlets 3, languages 2, window 2 h


def report(
    n: int, feed: str, lang: str | None, ago: timedelta, seen: timedelta | None = None
) -> StoryReport:
    seen_at = NOW - (seen if seen is not None else ago)
    return StoryReport(n, feed, lang, NOW - ago, seen_at)


def test_three_outlets_within_the_window_fire_and_say_why() -> None:
    reports = [
        report(1, "a", "en", timedelta(minutes=50)),
        report(2, "b", "en", timedelta(minutes=20)),
        report(3, "c", "en", timedelta(minutes=3)),
    ]
    surge = story_surge(7, reports, STORY, NOW)
    assert surge is not None
    assert (surge.kind, surge.key, surge.items) == ("story", "story:7", (1, 2, 3))
    assert surge.why == "3 outlets in 1 language within 47 min"
    assert surge.facts == {"outlets": 3, "languages": 1, "minutes": 47}


def test_two_outlets_in_one_language_do_not_fire() -> None:
    reports = [report(1, "a", "en", timedelta(minutes=30)), report(2, "b", "en-GB", timedelta(0))]
    assert story_surge(1, reports, STORY, NOW) is None


def test_two_languages_fire_even_from_two_outlets() -> None:
    reports = [report(1, "a", "en", timedelta(minutes=30)), report(2, "b", "ja", timedelta(0))]
    surge = story_surge(1, reports, STORY, NOW)
    assert surge is not None and surge.why == "2 outlets in 2 languages within 30 min"


def test_reports_spread_wider_than_the_window_do_not_fire() -> None:
    reports = [
        report(1, "a", "en", timedelta(hours=5), seen=timedelta(0)),
        report(2, "b", "en", timedelta(hours=2, minutes=30), seen=timedelta(0)),
        report(3, "c", "en", timedelta(0)),
    ]
    assert story_surge(1, reports, STORY, NOW) is None
    wide = StorySettings(window=timedelta(hours=6))
    surge = story_surge(1, reports, wide, NOW)
    assert surge is not None and surge.why == "3 outlets in 1 language within 5 h 00 min"


def test_a_burst_long_ago_is_history_even_if_never_fired() -> None:
    old = [report(n, f"f{n}", "en", timedelta(days=2, minutes=n)) for n in range(1, 5)]
    assert story_surge(1, old, STORY, NOW) is None
    # A late report of the same burst, first seen now, makes it news again.
    late = [*old, report(9, "f9", "en", timedelta(days=2), seen=timedelta(minutes=1))]
    assert story_surge(1, late, STORY, NOW) is not None


def test_a_feed_clock_in_the_future_counts_as_when_it_was_seen() -> None:
    future = StoryReport(3, "c", "en", NOW + timedelta(hours=10), NOW)
    reports = [
        report(1, "a", "en", timedelta(minutes=10)),
        report(2, "b", "en", timedelta(0)),
        future,
    ]
    surge = story_surge(1, reports, STORY, NOW)
    assert surge is not None and surge.why.endswith("within 10 min")


def test_one_outlet_many_reports_is_no_surge() -> None:
    reports = [report(n, "a", "en", timedelta(minutes=n)) for n in range(10)]
    assert story_surge(1, reports, STORY, NOW) is None


def test_volume_surge_over_factor_times_the_trailing_mean() -> None:
    # 7 days before the last hour: 168 h x 3.9 = 655 matches -> mean 3.9; 12 > 3 x 3.9.
    counts = [VolumeCount("rule:a", 12, 655, (1, 2)), VolumeCount("rule:b", 11, 655)]
    surges = volume_surges(counts, VolumeSettings(), NOW)
    assert [s.key for s in surges] == ["rule:a"]
    assert surges[0].why == "12 matches in the last hour, 3.1x the 7-day hourly mean of 3.9"
    assert surges[0].items == (1, 2) and surges[0].facts == {"matches": 12, "mean": 3.9}


def test_volume_needs_the_minimum_even_from_nothing() -> None:
    settings = VolumeSettings()
    assert volume_surges([VolumeCount("region:KP", 4, 0)], settings, NOW) == []
    surges = volume_surges([VolumeCount("region:KP", 5, 0)], settings, NOW)
    assert [s.why for s in surges] == ["5 matches in the last hour, none in the 7 days before"]


def test_volume_factor_and_minimum_are_settings() -> None:
    counts = [VolumeCount("rule:a", 3, 168)]  # mean 1.0
    assert volume_surges(counts, VolumeSettings(), NOW) == []
    assert len(volume_surges(counts, VolumeSettings(factor=2, min=3), NOW)) == 1


def test_cooldown_holds_a_key_back_until_it_has_passed() -> None:
    surge = Surge("volume", "rule:a", "why", NOW, ())
    other = Surge("volume", "rule:b", "why", NOW, ())
    hours = timedelta(hours=6)
    assert cooled([surge, other], {"rule:a": NOW - timedelta(hours=5)}, hours) == [other]
    assert cooled([surge], {"rule:a": NOW - hours}, hours) == [surge]


def test_profiles_tell_thresholds_apart() -> None:
    default, lower = SurgeSettings(), SurgeSettings(story=StorySettings(outlets=2))
    assert default.profile("story") != lower.profile("story")
    assert default.profile("volume") == lower.profile("volume")


def test_words() -> None:
    assert minutes(timedelta(minutes=65)) == "1 h 05 min"
    assert volume_why(1, 0.5) == "1 match in the last hour, 2.0x the 7-day hourly mean of 0.5"


def test_feeds_that_do_not_say_their_language_count_for_none() -> None:
    reports = [report(n, f"f{n}", None, timedelta(minutes=n)) for n in range(3)]
    surge = story_surge(1, reports, STORY, NOW)
    assert surge is not None and surge.why == "3 outlets within 2 min"


def test_a_store_watching_less_than_a_week_takes_the_mean_over_what_it_watched() -> None:
    counts = [VolumeCount("rule:a", 12, 48)]  # 2 a hour over 24 h; 0.3 a hour over 7 days
    assert volume_surges(counts, VolumeSettings(), NOW, timedelta(minutes=30)) == []
    [surge] = volume_surges(counts, VolumeSettings(), NOW, timedelta(hours=24))
    assert (
        surge.why
        == "12 matches in the last hour, 6.0x the hourly mean of 2.0 over the 24 hours before"
    )
    assert volume_surges(counts, VolumeSettings(factor=7), NOW, timedelta(hours=24)) == []


def test_old_news_never_surges() -> None:
    reports = [report(n, f"f{n}", "en", timedelta(minutes=n)) for n in range(3)]
    old = [replace(r, fresh=False) for r in reports]
    assert story_surge(1, old, STORY, NOW) is None
    assert story_surge(1, [*old[:2], reports[2]], STORY, NOW) is None

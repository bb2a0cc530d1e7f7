"""Surges: a story blowing up across outlets, or a rule's (or region's) matches far above normal.

Pure logic, counts in and surges out: the store gathers the reports and the hourly counts, this
module decides what fires and says why in words, and the store remembers what fired so that
each story, rule or region fires at most once per `cooldown`.

- A *story surge* fires when, within `window` (2 h), a story's reports come from `outlets` (3)
  distinct outlets or in `languages` (2) languages, and that burst holds a report first seen
  recently (within `window` of now): a burst that happened days ago is history, not news.
- A *volume surge* fires when a rule's or region's matches in the last hour exceed `factor`
  (3) times its hourly mean over the 7 days before that hour, and number at least `min` (5).
  A store watched for less than 7 days takes the mean over the hours it watched: a new
  install has no week behind it, and "none in the 7 days before" would be untrue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

KINDS = ("story", "volume")
HOUR = timedelta(hours=1)
BASELINE = timedelta(days=7)  # the trailing span of a volume surge's hourly mean
BASELINE_HOURS = BASELINE / HOUR


@dataclass(frozen=True)
class StorySettings:
    outlets: int = 3
    languages: int = 2
    window: timedelta = timedelta(hours=2)
    cooldown: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class VolumeSettings:
    factor: float = 3.0
    min: int = 5
    cooldown: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class SurgeSettings:
    """The `surge:` block of channels.yaml (or a route's override of it)."""

    story: StorySettings = StorySettings()
    volume: VolumeSettings = VolumeSettings()

    def profile(self, kind: str) -> str:
        """The thresholds that decide a surge of `kind`, as text: surges found with other
        thresholds (a route's override) are kept apart, each with its own cooldown."""
        if kind == "story":
            s = self.story
            return f"outlets={s.outlets},languages={s.languages},window={_secs(s.window)}"
        return f"factor={self.volume.factor:g},min={self.volume.min}"


@dataclass(frozen=True)
class StoryReport:
    """One report of a story, as a story surge sees it."""

    item_id: int
    feed_id: str
    lang: str | None
    published: datetime
    first_seen: datetime
    fresh: bool = True  # False: old news when first seen (history), which never surges

    @property
    def at(self) -> datetime:
        """When it was reported: its published time, but never later than monitor saw it
        (a feed's clock in the future must not stretch or shrink a burst)."""
        return min(self.published, self.first_seen)


@dataclass(frozen=True)
class VolumeCount:
    """A rule's or region's matches: `key` is `rule:ID` or `region:CODE`."""

    key: str
    last_hour: int
    before: int  # in the 7 days before the last hour
    items: tuple[int, ...] = ()  # the items of the last hour (for the alert)


@dataclass(frozen=True)
class Surge:
    kind: str  # story | volume
    key: str  # story:ID, rule:ID or region:CODE
    why: str  # one line for people, e.g. "5 outlets in 3 languages within 47 min"
    fired_at: datetime
    items: tuple[int, ...]  # the reports (story) or last hour's matched items (volume)
    profile: str = ""  # SurgeSettings.profile(kind): which thresholds found it
    facts: Mapping[str, float | int | str] = field(default_factory=dict)  # for webhooks


def story_surge(
    story_id: int, reports: Sequence[StoryReport], settings: StorySettings, now: datetime
) -> Surge | None:
    """The story's surge now, or None. Of the bursts that qualify, the widest is told."""
    ordered = sorted((r for r in reports if r.fresh), key=lambda r: (r.at, r.item_id))
    recent = now - settings.window
    best: tuple[int, int, list[StoryReport]] | None = None
    for start, first in enumerate(ordered):
        burst = [r for r in ordered[start:] if r.at - first.at <= settings.window]
        if not any(r.first_seen >= recent for r in burst):
            continue
        outlets, langs = len({r.feed_id for r in burst}), len(_languages(burst))
        if outlets < settings.outlets and langs < settings.languages:
            continue
        if best is None or (outlets, langs) > best[:2]:
            best = (outlets, langs, burst)
    if best is None:
        return None
    outlets, langs, burst = best
    took = burst[-1].at - burst[0].at
    # Feeds that do not say their language count for none: "in 0 languages" would mislead.
    spoken = f" in {_count(langs, 'language')}" if langs else ""
    why = f"{_count(outlets, 'outlet')}{spoken} within {minutes(took)}"
    facts = {"outlets": outlets, "languages": langs, "minutes": round(took / timedelta(minutes=1))}
    return Surge(
        kind="story",
        key=f"story:{story_id}",
        why=why,
        fired_at=now,
        items=tuple(r.item_id for r in burst),
        facts=facts,
    )


def volume_surges(
    counts: Iterable[VolumeCount],
    settings: VolumeSettings,
    now: datetime,
    watched: timedelta = BASELINE,
) -> list[Surge]:
    """The rules and regions whose last hour is a surge, in the order of `counts`. `watched`
    is how much of the 7 days before the last hour the store was watching: the mean is over
    that (less than an hour of it tells nothing: no surge)."""
    hours = min(watched, BASELINE) / HOUR
    if hours < 1:
        return []
    surges = []
    for count in counts:
        mean = count.before / hours
        if count.last_hour < settings.min or count.last_hour <= settings.factor * mean:
            continue
        surges.append(
            Surge(
                kind="volume",
                key=count.key,
                why=volume_why(count.last_hour, mean, hours),
                fired_at=now,
                items=count.items,
                facts={"matches": count.last_hour, "mean": round(mean, 2)},
            )
        )
    return surges


def volume_why(last_hour: int, mean: float, hours: float = BASELINE_HOURS) -> str:
    head = f"{_count(last_hour, 'match', 'matches')} in the last hour"
    span = "7 days" if hours >= BASELINE_HOURS else _count(int(hours), "hour")
    if mean == 0:
        return head + f", none in the {span} before"
    if hours >= BASELINE_HOURS:
        return head + f", {last_hour / mean:.1f}x the 7-day hourly mean of {mean:.1f}"
    return head + f", {last_hour / mean:.1f}x the hourly mean of {mean:.1f} over the {span} before"


def cooled(
    surges: Iterable[Surge], last: Mapping[str, datetime], cooldown: timedelta
) -> list[Surge]:
    """The surges whose key last fired (under the same thresholds) `cooldown` ago or more."""
    return [s for s in surges if s.key not in last or s.fired_at - last[s.key] >= cooldown]


def minutes(span: timedelta) -> str:
    """`47 min`, `1 h 05 min`."""
    total = round(span / timedelta(minutes=1))
    if total < 60:
        return f"{total} min"
    return f"{total // 60} h {total % 60:02d} min"


def _languages(reports: Iterable[StoryReport]) -> set[str]:
    # `en-GB` and `en` are one language to a reader; an unknown language counts as none.
    return {r.lang.split("-")[0].lower() for r in reports if r.lang}


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _secs(span: timedelta) -> int:
    return int(span.total_seconds())

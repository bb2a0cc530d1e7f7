"""A stored story as a digest shows it: its reports, and for an update what is new.

Plain values (no imports from the rest of monitor), so `models.DigestEntry` can carry one.
Languages are shown by their primary subtag (`zh-tw` is `zh`): "in en, ja, zh" counts
languages, not regional spellings of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StoryReport:
    """One outlet's report of a story (`outlet`: the feed id)."""

    item_id: int
    outlet: str
    outlet_title: str
    lang: str | None
    title: str
    link: str | None
    published: datetime


@dataclass(frozen=True)
class StoryUpdate:
    """What a story gained since the route last sent it (`updates: true` on the route)."""

    outlets: tuple[str, ...]  # feed ids the route had not sent for this story
    languages: tuple[str, ...]
    severity_was: str | None = None  # set when the severity rose


@dataclass(frozen=True)
class DigestStory:
    """The story an entry stands for, every report oldest first. `id` is None for an item
    without a stored story (a story of its own)."""

    id: int | None
    reports: tuple[StoryReport, ...]
    update: StoryUpdate | None = None

    @property
    def outlets(self) -> tuple[str, ...]:
        """Feed ids in the order they first reported."""
        return tuple(dict.fromkeys(r.outlet for r in self.reports))

    @property
    def languages(self) -> tuple[str, ...]:
        """Primary language subtags in the order they first reported."""
        return tuple(dict.fromkeys(lang for r in self.reports if (lang := primary(r.lang))))


def primary(lang: str | None) -> str | None:
    """`zh` for `zh-TW`, `en` for `en`; None for no language."""
    return lang.split("-")[0].lower() if lang else None


def counted(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def reported_text(story: DigestStory) -> str:
    """`reported by 3 outlets in en, ja` (languages left out when no report has one)."""
    text = f"reported by {counted(len(story.outlets), 'outlet')}"
    return f"{text} in {', '.join(story.languages)}" if story.languages else text


def new_reports(story: DigestStory) -> tuple[StoryReport, ...]:
    """An update's reports from outlets or in languages new since the route last sent it."""
    update = story.update
    if update is None:
        return ()
    return tuple(
        r
        for r in story.reports
        if r.outlet in update.outlets or primary(r.lang) in update.languages
    )


def update_text(story: DigestStory, severity: str) -> str:
    """`new since last sent: 1 outlet (Hanbando Ilbo), language ko, severity critical (was
    high)`: what an update brings, in words."""
    update = story.update
    if update is None:
        return ""
    titles = dict((r.outlet, r.outlet_title) for r in story.reports)
    parts = []
    if update.outlets:
        names = ", ".join(titles.get(o, o) for o in update.outlets)
        parts.append(f"{counted(len(update.outlets), 'outlet')} ({names})")
    if update.languages:
        word = "language" if len(update.languages) == 1 else "languages"
        parts.append(f"{word} {', '.join(update.languages)}")
    if update.severity_was:
        parts.append(f"severity {severity} (was {update.severity_was})")
    return "new since last sent: " + ", ".join(parts)


def update_short(story: DigestStory, severity: str) -> str:
    """`update: +1 outlet, +ko, now critical`: an update in a subject line."""
    update = story.update
    if update is None:
        return ""
    parts = [f"+{counted(len(update.outlets), 'outlet')}"] if update.outlets else []
    parts += [f"+{lang}" for lang in update.languages]
    parts += [f"now {severity}"] if update.severity_was else []
    return "update: " + ", ".join(parts)

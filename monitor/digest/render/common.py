"""What the email and webhook renderers share: links, local times, the digest's window,
the "more" hint and the references to items sent before."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.digest.cron import schedule_trigger
from monitor.digest.storyview import (
    StoryReport,
    new_reports,
    primary,
    reported_text,
    update_text,
)
from monitor.match.entities import load_entities
from monitor.models import Digest, DigestEntry, SentBefore
from monitor.yamlfile.check import Invalid


def safe_link(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL (safe to put in an href), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    ok = parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
    return url.strip() if ok and not any(c.isspace() for c in url.strip()) else None


def zone(name: str) -> ZoneInfo:
    """The route's timezone; UTC if the name is unknown (channels.yaml validation reports it:
    a digest still goes out rather than being lost over a clock label)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(when: datetime, tz: str) -> str:
    """`2025-12-01 09:30 JST`: a time as the route's reader reads it."""
    return when.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def window_text(digest: Digest) -> str:
    """When the digest's items were published: `2025-12-01 09:30 JST` for one instant,
    `2025-12-01 09:30 JST to 2025-12-02 07:00 JST` for a span."""
    if digest.window_start is None:
        return "no new items"
    tz = digest.route.timezone
    start, end = local_time(digest.window_start, tz), local_time(digest.window_end, tz)
    return start if start == end else f"{start} to {end}"


def sent_text(sent: SentBefore, digest: Digest) -> str:
    """`already sent at 09:12` in the route's time zone (with the date on another day)."""
    tz = zone(digest.route.timezone)
    when, today = sent.sent.astimezone(tz), digest.created.astimezone(tz)
    stamp = f"{when:%H:%M}" if when.date() == today.date() else f"{when:%Y-%m-%d %H:%M}"
    return f"already sent at {stamp}"


def more_hint(digest: Digest) -> str | None:
    """`12 more not shown (...)`: when they come, and the command that lists exactly them;
    None when nothing was left out."""
    if digest.truncated <= 0:
        return None
    return (
        f"{digest.truncated} more not shown (they come in the next digest, {_next(digest)}); "
        f"to list them now: monitor digest show {digest.id} --left-out"
    )


def _next(digest: Digest) -> str:
    """When the route's next digest goes out, as of the digest's creation."""
    route = digest.route
    if route.schedule == "immediate":
        return "after the next poll"
    try:
        trigger = schedule_trigger(route)
    except (Invalid, ValueError, KeyError):  # channels.yaml reports a bad schedule or zone
        trigger = None
    fire = trigger.get_next_fire_time(None, digest.created) if trigger else None
    if fire is None:
        return "at the route's next scheduled send"
    return f"at the next scheduled send, {local_time(fire, route.timezone)}"


def regions_text(entry: DigestEntry) -> str:
    return ", ".join(entry.item.regions)


def entities_text(entry: DigestEntry) -> str:
    """`Xi Jinping, Donald Trump`: who and what the item names, each once, in text order.
    An entity only `rules/entities.yaml` knows is shown by its id."""
    if not entry.item.entities:
        return ""
    known = load_entities()
    names = (known[t.id].name if t.id in known else t.id for t in entry.item.entities)
    return ", ".join(dict.fromkeys(names))


def terms_text(entry: DigestEntry) -> str:
    """`Rule title (severity): term, term; Other rule (low)`: why the item is here."""
    parts = []
    for rule in entry.rules:
        terms = f": {', '.join(rule.terms)}" if rule.terms else ""
        parts.append(f"{rule.title} ({rule.severity}){terms}")
    return "; ".join(parts)


REPORTS_MAX = 20  # reports listed under one entry; a story told by more says how many more


def story_heading(entry: DigestEntry) -> str | None:
    """`Reported by 3 outlets in en, ja` above a story's reports; for an update, `Update: now
    reported by 4 outlets in en, ja, ko; new since last sent: ...`. None for a story of one
    report (nothing to add to the entry itself)."""
    story = entry.story
    if story is None:
        return None
    if story.update is not None:
        return f"Update: now {reported_text(story)}; {update_text(story, entry.severity)}"
    text = reported_text(story)
    return text[0].upper() + text[1:] if len(story.reports) > 1 else None


def story_reports(entry: DigestEntry) -> tuple[list[StoryReport], int]:
    """The reports to list under the entry (an update's new ones only) and how many more
    were left out for room."""
    story = entry.story
    if story is None:
        return [], 0
    reports = new_reports(story) if story.update is not None else story.reports
    return list(reports[:REPORTS_MAX]), max(0, len(reports) - REPORTS_MAX)


def report_label(report: StoryReport) -> str:
    """`Asia Wire (en)`: who reported, in which language."""
    lang = primary(report.lang)
    return f"{report.outlet_title} ({lang})" if lang else report.outlet_title


def story_url(digest: Digest, entry: DigestEntry) -> str | None:
    """`<web_url>/stories/<id>`: the entry's story in the console, when channels.yaml names
    the console (`web_url`) and the entry stands for a stored story."""
    if digest.web_url is None or entry.story is None or entry.story.id is None:
        return None
    return f"{digest.web_url.rstrip('/')}/stories/{entry.story.id}"

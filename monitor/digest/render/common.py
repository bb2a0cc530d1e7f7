"""What the email and webhook renderers share: links, local times, the "more" hint."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.models import Digest, DigestEntry

SUMMARY_MAX = 400  # characters of an item's summary shown in a digest


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


def short_summary(text: str) -> str:
    """The summary cut to `SUMMARY_MAX` characters at a space where possible."""
    text = " ".join(text.split())
    if len(text) <= SUMMARY_MAX:
        return text
    cut = text[:SUMMARY_MAX]
    space = cut.rfind(" ")
    return (cut[:space] if space > SUMMARY_MAX // 2 else cut) + "…"


def more_hint(digest: Digest, now: datetime) -> str | None:
    """`12 more not shown: ...` with a command that lists them, or None when none are left."""
    if digest.truncated <= 0:
        return None
    command = ["monitor items search", f"--since {_span(digest.window_start, now)}"]
    match = digest.route.match
    if len(match.rules) == 1:
        command.append(f"--rule {match.rules[0]}")
    if len(match.regions) == 1:
        command.append(f"--region {match.regions[0]}")
    command.append(f"--limit {digest.truncated + len(digest.entries)}")
    return (
        f"{digest.truncated} more not shown (they come in the next digest); "
        f"to see them now: {' '.join(command)}"
    )


def _span(start: datetime | None, now: datetime) -> str:
    """A `--since` duration reaching back to `start`: whole hours, or days past two days."""
    hours = max(1, math.ceil(((now - start) if start else timedelta(days=1)) / timedelta(hours=1)))
    return f"{math.ceil(hours / 24)}d" if hours > 48 else f"{hours}h"


def regions_text(entry: DigestEntry) -> str:
    return ", ".join(entry.item.regions)


def terms_text(entry: DigestEntry) -> str:
    """`Rule title (severity): term, term; Other rule (low)`: why the item is here."""
    parts = []
    for rule in entry.rules:
        terms = f": {', '.join(rule.terms)}" if rule.terms else ""
        parts.append(f"{rule.title} ({rule.severity}){terms}")
    return "; ".join(parts)

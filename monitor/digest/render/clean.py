"""Feed text made fit to show: `tidy` applies it to a whole digest before rendering.

Feed text is whatever a feed wrote, and a digest puts it in front of people and into mail
headers. So every value a digest shows is:

- freed of bidirectional controls (U+202A-202E, U+2066-2069), which can make a line read
  differently from what it contains (a reversed file name, a hidden part of a link), and of
  the other control characters;
- one line (whitespace runs, newlines included, become one space): a newline in a header
  would end it, and a digest line is a line;
- cut to a sane length (a 1 MB title once made an 842 KB email);
- for links: without `user@` before the host (`https://trusted.example@evil.example/` goes to
  evil.example, whatever it seems to say), and left out when absurdly long.
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from monitor.digest.storyview import DigestStory
from monitor.models import Digest, DigestEntry, Item, RuleRef, SentBefore

TITLE_MAX = 300  # characters of an item's title
SUMMARY_MAX = 400  # characters of an item's summary
NAME_MAX = 120  # a feed's or a rule's title, a matched term
LINK_MAX = 2048  # longer links are not shown (browsers and mail tools choke on them anyway)
# Bidi embeddings, overrides and isolates; C0 and C1 controls and DEL (tab and newline are
# whitespace, which `one_line` collapses anyway).
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    return _INVISIBLE.sub("", text)


def one_line(text: str, limit: int | None = None) -> str:
    """The text without controls, on one line, stripped, cut at `limit` characters (at a
    space when one is near the end, with an ellipsis)."""
    line = " ".join(strip_controls(text).split())
    if limit is None or len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


def clean_link(url: str | None) -> str | None:
    """The link to show: controls and `user@` taken out; None when empty or too long. Only
    http(s) links are ever made clickable (see `common.safe_link`)."""
    if not url:
        return None
    text = strip_controls(url).strip()
    if not text or len(text) > LINK_MAX:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return text  # not a URL: shown as text, never as a link
    if parts.scheme.lower() in ("http", "https") and "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=host))
    return text


def link_host(url: str | None) -> str | None:
    """The host a link really goes to, as a reader can trust it: lower case, and an
    international name in its ASCII form (`xn--...`), which cannot imitate another script."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def tidy(digest: Digest) -> Digest:
    """The digest with every shown value cleaned as the module docstring says."""
    return replace(
        digest,
        entries=tuple(_entry(e) for e in digest.entries),
        already=tuple(SentBefore(_entry(s.entry), s.sent, s.digest_id) for s in digest.already),
    )


def _entry(entry: DigestEntry) -> DigestEntry:
    return replace(
        entry,
        item=_item(entry.item),
        feed_title=one_line(entry.feed_title, NAME_MAX),
        rules=tuple(_rule(r) for r in entry.rules),
        also=tuple((one_line(title, NAME_MAX), clean_link(link)) for title, link in entry.also),
        story=_story(entry.story) if entry.story is not None else None,
    )


def _story(story: DigestStory) -> DigestStory:
    reports = tuple(
        replace(
            r,
            outlet_title=one_line(r.outlet_title, NAME_MAX),
            title=one_line(r.title, TITLE_MAX),
            link=clean_link(r.link),
            lang=one_line(r.lang, 35) if r.lang else r.lang,
        )
        for r in story.reports
    )
    return replace(story, reports=reports)


def _item(item: Item) -> Item:
    return replace(
        item,
        title=one_line(item.title, TITLE_MAX),
        summary=one_line(item.summary, SUMMARY_MAX),
        link=clean_link(item.link),
        lang=one_line(item.lang, 35) if item.lang else item.lang,  # BCP 47 fits in 35
        html="",  # never shown in a digest: not carried into rendering at all
    )


def _rule(rule: RuleRef) -> RuleRef:
    return replace(
        rule,
        title=one_line(rule.title, NAME_MAX),
        terms=tuple(one_line(t, NAME_MAX) for t in rule.terms),
    )

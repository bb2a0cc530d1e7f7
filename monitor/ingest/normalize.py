"""Normalise stage: a parsed feed's entries -> `Item`s ready to store.

For each entry, in document order:

- link: made absolute against the feed's site link (itself resolved against the feed URL), then
  canonical: scheme and host lower-cased, default port and fragment dropped, tracking
  parameters (`utm_*`, `fbclid`...) removed, the other parameters kept as written, in order.
  Only http(s) links are kept.
- guid: the entry's id, else the canonical link, else a hash of title + summary, so an item
  keeps its identity from one poll to the next.
- title, summary: plain text (tags stripped, script/style dropped, entities decoded, whitespace
  folded). The summary falls back to the content; `html` keeps the original (content, else
  summary) for digests.
- lang: the entry's, else the feed's, as a lower-case tag (`zh-tw`), else None.
- published: published, else updated, else now (first seen). A time in the future becomes
  now too: it is a wrong clock or time zone at the source, and kept as it is it would sort the
  item above every real one for hours and make it look fresh to the history check.
- An entry with nothing to identify or show (no id, link, title or summary) is dropped, and so
  is a later entry repeating a guid already seen in the same document.

HTML is stripped with regular expressions rather than a parser: the input has already been
through feedparser's sanitiser (well-formed tags, attribute values escaped), the output is only
ever text, and this is 3-4x faster than html.parser, lxml or selectolax on ~1 KB summaries
(measured ~60,000/s against 16,000-22,000/s).
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

from monitor.models import Entry, Feed, Item, ParsedFeed

# Query parameters that only tell the publisher where a click came from. Removing them makes
# the same article from an email, a social post and the feed one link.
# fmt: off
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "ttclid", "igshid", "mc_cid", "mc_eid", "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok",
    "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "wickedid", "rb_clickid",
    "__twitter_impression",
})
# fmt: on
TRACKING_PREFIXES = ("utm_",)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ABSOLUTE = re.compile(r"https?://", re.I)

# Longer HTML is cut before stripping: no summary needs more, and it bounds the regex work
# a hostile feed can cause.
_MAX_HTML = 200_000
_DROPPED = re.compile(r"<(script|style|template)\b[^<>]*>.*?</\1\s*>|<!--.*?-->", re.I | re.S)
# Inline tags join the text around them ("Tai<b>wan</b>" is one word); every other tag
# separates words ("<p>a</p><p>b</p>" is "a b").
_INLINE = (
    "a|abbr|b|bdi|bdo|cite|code|data|del|dfn|em|font|i|ins|kbd|mark|q|ruby|rb|s|samp|small"
    "|span|strike|strong|sub|sup|time|tt|u|var|wbr"
)
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE})\b[^<>]*>", re.I)
# `[^<>]*` (not quote-aware) keeps matching linear: a failed try stops at the next `<`.
_TAG = re.compile(r"<(?:/?[A-Za-z][^<>]*|![^<>]*|\?[^<>]*)>")
# Control characters other than whitespace (C0, DEL, C1): noise from broken encoders.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_LANG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")


def normalize(feed: Feed, parsed: ParsedFeed, base_url: str, now: datetime) -> list[Item]:
    """Turn a parsed document into items; `base_url` is the URL the feed was fetched from."""
    if now.tzinfo is None:
        raise ValueError("normalize needs an aware `now` (UTC)")
    site = _site(base_url, parsed.link)
    items: list[Item] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        item = _item(feed.id, entry, parsed.language, site, now)
        if item is not None and item.guid not in seen:
            seen.add(item.guid)
            items.append(item)
    return items


def _site(base_url: str, link: str | None) -> str:
    """The feed's site link made absolute: what relative entry links are relative to."""
    try:
        return urljoin(base_url, link) if link else base_url
    except ValueError:  # an invalid IPv6 literal, say
        return base_url


def _item(
    feed_id: str, entry: Entry, feed_lang: str | None, site: str, now: datetime
) -> Item | None:
    link = canonical_link(entry.link, site)
    title = plain_text(entry.title)
    summary = plain_text(entry.summary or entry.content)
    guid = _guid(entry.guid, link, title, summary)
    if guid is None:
        return None
    return Item(
        feed_id=feed_id,
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        html=entry.content or entry.summary or "",
        author=(entry.author or "").strip() or None,
        lang=normalize_lang(entry.language) or normalize_lang(feed_lang),
        published=published_at(entry, now),
        first_seen=now,
        content_hash=_digest(title, summary, link or ""),
    )


def _guid(guid: str | None, link: str | None, title: str, summary: str) -> str | None:
    """The entry's id, else its link, else a hash of what it says; None when it has nothing."""
    if guid and guid.strip():
        return guid.strip()
    if link:
        return link
    return _digest(title, summary) if title or summary else None


def _digest(*parts: str) -> str:
    # A separator keeps ("ab", "c") and ("a", "bc") apart.
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def published_at(entry: Entry, now: datetime) -> datetime:
    """published, else updated, else now; a time in the future is clamped to now."""
    return min(entry.published or entry.updated or now, now)


# --- links ----------------------------------------------------------------------------------


def canonical_link(link: str | None, base: str) -> str | None:
    """The absolute, canonical http(s) form of `link`, or None if it has none."""
    if not link:
        return None
    link = link.strip()
    try:
        # urljoin costs as much as the rest together; most links are absolute already.
        parts = urlsplit(link if _ABSOLUTE.match(link) else urljoin(base, link))
        netloc = _netloc(parts.scheme.lower(), parts.hostname, parts.port, parts.netloc)
    except ValueError:  # a bad port or IPv6 literal: not a link anyone can follow
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not netloc:
        return None
    query = strip_tracking(parts.query)
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def _netloc(scheme: str, host: str | None, port: int | None, raw: str) -> str:
    if not host:
        return ""
    if ":" in host:  # IPv6 literal: urlsplit dropped the brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    userinfo, at, _ = raw.rpartition("@")
    return f"{userinfo}@{host}" if at else host


def strip_tracking(query: str) -> str:
    """Drop tracking parameters from a raw query string, keeping the rest byte for byte."""
    kept = [p for p in query.split("&") if p and not _is_tracking(p.partition("=")[0])]
    return "&".join(kept)


def _is_tracking(raw_name: str) -> bool:
    name = unquote_plus(raw_name).lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


# --- text -----------------------------------------------------------------------------------


def plain_text(markup: str | None) -> str:
    """HTML -> one line of plain text: tags stripped, entities decoded, whitespace folded."""
    if not markup:
        return ""
    text = markup[:_MAX_HTML]
    if "<" in text:
        text = _DROPPED.sub(" ", text)
        text = _INLINE_TAG.sub("", text)
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    return " ".join(text.split())


def normalize_lang(tag: str | None) -> str | None:
    """A language tag in lower case with hyphens (`zh_TW` -> `zh-tw`), or None if not one."""
    if not tag:
        return None
    lang = tag.strip().lower().replace("_", "-")
    return lang if _LANG.fullmatch(lang) else None

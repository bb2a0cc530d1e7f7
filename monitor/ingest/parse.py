"""Parse stage: the bytes of one HTTP response -> `ParsedFeed`.

RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 go through feedparser; JSON Feed 1.0/1.1 is read here with
`json`, because feedparser 6 does not know it. Plain, well-formed RSS 2.0/1.0 and Atom 1.0
are first offered to `fastparse` (lxml), which gives feedparser's result sooner or declines.
The rules, in order:

1. A body starting with `{` or `[` (or labelled JSON and not starting with `<`) is read as
   JSON Feed; anything else as XML.
2. XML is decoded by `charset.decode`, not by feedparser (see there for why and in which
   order); feedparser then gets UTF-8 bytes.
3. feedparser gets a `BytesIO`, never a URL or str (it would fetch or open those). It strips
   the DOCTYPE and external entities, so parsing never touches the network or disk.
4. A recoverable problem (feedparser's bozo: undefined entity, truncated document, wrong
   declared encoding) keeps the entries and sets `warning`. A document with no feed version and
   no entries (an HTML page, an error page, garbage) raises `ParseError`.

Entry fields are HTML: plain-text values (a `text/plain` title, JSON Feed's `title`) are
escaped, so the normalise stage strips and unescapes every field the same way.

This runs in a worker process: it is a pure function of its arguments.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
import time
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.urls import resolve_relative_uris

from monitor.errors import ParseError
from monitor.ingest.charset import decode
from monitor.ingest.fastparse import read_feed
from monitor.ingest.normalize import plain_text
from monitor.models import Entry, ParsedFeed

_HTML_START = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_ATTR = re.compile(r"""([\w-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
# An href/src/... value without a scheme: relative, including "//host/x" and "/x".
_RELATIVE_REF = re.compile(
    r"""\b(?:href|src|cite|action|background|longdesc|poster|usemap|codebase|data|profile)"""
    # Atomic: with a plain `["']?` the engine backtracks to match no quote, and then the
    # quote itself passes the "no scheme" test, so every absolute link looked relative and the
    # slow resolver ran on nearly every entry (17% of a cold poll, measured).
    r"""(?>\s*=\s*["']?)(?![a-zA-Z][a-zA-Z0-9+.-]*:)"""
)
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")

_NOT_A_FEED_HINT = "check that the URL in rules/feeds.yaml points at an RSS, Atom or JSON feed"


def parse(
    feed_id: str, body: bytes, headers: Mapping[str, str], url: str, *, fast: bool = True
) -> ParsedFeed:
    """Parse one response body; `url` is the URL finally answered (the base for relative links).

    With `fast`, plain RSS 2.0/1.0 and Atom 1.0 are read by `fastparse` (the same result,
    ~4x sooner); whatever it declines goes to feedparser. Raises `ParseError` when the body
    is not a feed at all.
    """
    content_type = _header(headers, "content-type")
    if not body.strip():
        raise ParseError(
            "the server returned an empty body", feed_id=feed_id, hint=_NOT_A_FEED_HINT
        )
    if _looks_like_json(body, content_type):
        return _parse_json_feed(feed_id, body, url)
    text, warning = decode(body, content_type)
    language = _header(headers, "content-language")
    if fast and (result := read_feed(text, language)) is not None:
        return _parsed_feed(result, url, warning)
    try:
        result = _feedparser(text, language)
    except Exception as exc:  # feedparser promises never to raise; if a bug does, one feed fails
        raise ParseError(f"the feed could not be parsed: {exc!r}", feed_id=feed_id) from exc
    if not result.get("version") and not result["entries"]:
        raise _not_a_feed(feed_id, text, content_type, url, result)
    return _parsed_feed(result, url, _join(warning, _bozo_warning(result)))


# --- feedparser -----------------------------------------------------------------------------


def _feedparser(text: str, language: str) -> Any:
    # A declaration misplaced after blank lines (a common PHP bug) makes expat give up.
    if text.lstrip().startswith("<?xml"):
        text = text.lstrip()
    headers = {"content-type": "application/xml; charset=utf-8"}
    if language:
        headers["content-language"] = language
    # sanitize_html: off. The store keeps the feed's *original* HTML (Item.html) and
    # sanitising happens where HTML is rendered (digests), with the rules of that output.
    # feedparser's sanitiser would halve parsing speed (measured ~3,000 -> ~1,600 items/s),
    # the costliest stage of a cold poll, for HTML most of which is never rendered. Plain-text
    # title and summary are made by `normalize.plain_text`, which drops script/style content.
    # resolve_relative_uris: off, and no Content-Location either, because feedparser would
    # resolve against the feed's URL, while an RSS feed's relative links mean its site (the
    # channel link), often on another host. `_base` picks the base and we resolve ourselves,
    # only where HTML has a relative reference. Resolving is string rewriting: nothing is
    # fetched either way.
    return feedparser.parse(
        io.BytesIO(text.encode("utf-8")),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _parsed_feed(result: Any, url: str, warning: str | None) -> ParsedFeed:
    feed = result["feed"]
    language = _str(dict.get(feed, "language")) or _str(result["headers"].get("content-language"))
    base = _base(url, _str(dict.get(feed, "link")), str(result.get("version") or ""))
    return ParsedFeed(
        title=plain_text(_html_value(feed, "title")) or None,
        link=_absolute(url, dict.get(feed, "link")),
        language=language,
        entries=tuple(_entry(e, language, base) for e in result["entries"]),
        warning=warning,
    )


def _base(url: str, site: str | None, version: str) -> str:
    """What relative links in entries are relative to.

    Atom has xml:base (feedparser applies it) and otherwise means the document's URL. RSS and
    JSON Feed have neither, and publishers write links relative to their site.
    """
    if site and not version.startswith("atom"):
        return _absolute(url, site) or url
    return url


def _entry(entry: dict[str, Any], feed_language: str | None, base: str) -> Entry:
    # dict.get, not entry.get: FeedParserDict maps missing keys to others (updated ->
    # published) and warns while doing so.
    content = dict.get(entry, "content") or []
    first_content = content[0] if content else {}
    # feedparser copies content into summary when there is none; only a real one counts.
    summary = _html_value(entry, "summary", base) if "summary_detail" in entry else None
    return Entry(
        guid=_str(dict.get(entry, "id")),
        link=_absolute(base, dict.get(entry, "link")),
        title=_html_value(entry, "title"),
        summary=summary,
        content=_detail_html(first_content, base),
        author=_str(dict.get(entry, "author")),
        language=_entry_language(entry, first_content) or feed_language,
        published=_struct_utc(dict.get(entry, "published_parsed")),
        updated=_struct_utc(dict.get(entry, "updated_parsed")),
    )


def _html_value(parent: dict[str, Any], key: str, base: str | None = None) -> str | None:
    detail = dict.get(parent, f"{key}_detail")
    if isinstance(detail, Mapping):
        return _detail_html(detail, base)
    return _str(dict.get(parent, key))


def _detail_html(detail: Mapping[str, Any], base: str | None = None) -> str | None:
    """A feedparser text construct as HTML: plain text is escaped so it survives stripping;
    with a `base`, relative links in HTML are resolved (against xml:base if it had one)."""
    value = _str(detail.get("value"))
    if value is None or detail.get("type") == "text/plain":
        return html.escape(value, quote=False) if value else None
    return _resolve_html(value, urljoin(base, detail.get("base") or "")) if base else value


def _resolve_html(markup: str | None, base: str) -> str | None:
    """Relative href/src made absolute; the resolver is slow, so only when one is there."""
    if markup is None or not _RELATIVE_REF.search(markup):
        return markup
    return str(resolve_relative_uris(markup, base, "utf-8", "text/html"))


def _absolute(base: str, link: object) -> str | None:
    text = _str(link)
    try:
        return urljoin(base, text) if text else None
    except ValueError:  # an invalid IPv6 literal, say: no link anyone can follow
        return None


def _entry_language(entry: dict[str, Any], content: Mapping[str, Any]) -> str | None:
    for detail in (content, dict.get(entry, "summary_detail"), dict.get(entry, "title_detail")):
        if isinstance(detail, Mapping) and (lang := _str(detail.get("language"))):
            return lang
    return None


def _struct_utc(value: object) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_times; timegm copes with leap seconds."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _xml_problem(result: Any) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXParseException):
        where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        return f"not well-formed XML ({exc.getMessage()} at {where})"
    return str(exc)


def _bozo_warning(result: Any) -> str | None:
    problem = _xml_problem(result)
    return f"the feed is {problem}; its entries were read leniently" if problem else None


# --- not a feed -----------------------------------------------------------------------------


def _not_a_feed(feed_id: str, text: str, content_type: str, url: str, result: Any) -> ParseError:
    if content_type.lower().startswith("text/html") or _HTML_START.match(text[:4096]):
        alternate = _alternate_feed(text, url)
        hint = (
            f"the page names its feed: put {alternate} in rules/feeds.yaml"
            if alternate
            else 'look for a <link rel="alternate"> feed URL on that page'
        )
        return ParseError("the URL returned an HTML page, not a feed", feed_id=feed_id, hint=hint)
    problem = _xml_problem(result)
    reason = f"it is {problem}" if problem else "no RSS, Atom or JSON Feed element found"
    return ParseError(
        f"the document is not a feed: {reason}", feed_id=feed_id, hint=_NOT_A_FEED_HINT
    )


def _alternate_feed(page: str, url: str) -> str | None:
    """The first `<link rel="alternate" type="application/rss+xml" href>` of an HTML page."""
    for tag in _LINK_TAG.findall(page[:65536]):
        attrs = {k.lower(): html.unescape(v.strip("\"'")) for k, v in _ATTR.findall(tag)}
        is_feed = attrs.get("type", "").lower() in _FEED_TYPES and attrs.get("href")
        if is_feed and "alternate" in attrs.get("rel", "").lower().split():
            return urljoin(url, attrs["href"])
    return None


# --- JSON Feed ------------------------------------------------------------------------------


def _looks_like_json(body: bytes, content_type: str) -> bool:
    # The first byte decides; servers label feeds wrongly more often than they write them wrong.
    first = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    return first in (b"{", b"[") or (first != b"<" and "json" in content_type.lower())


def _parse_json_feed(feed_id: str, body: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(body)  # bytes: json detects UTF-8/16/32 itself
    except (ValueError, RecursionError) as exc:
        raise ParseError(
            f"the body is not valid JSON: {exc}", feed_id=feed_id, hint=_NOT_A_FEED_HINT
        ) from exc
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError(
            "the JSON document is not a JSON Feed (it has no items list)",
            feed_id=feed_id,
            hint=_NOT_A_FEED_HINT,
        )
    return _json_feed(doc, items, url)


def _json_feed(doc: dict[str, Any], items: list[Any], url: str) -> ParsedFeed:
    language = _str(doc.get("language"))
    base = _base(url, _str(doc.get("home_page_url")), "json")
    entries = tuple(_json_entry(item, language, base) for item in items if isinstance(item, dict))
    warnings = []
    if not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        warnings.append("the JSON Feed has no https://jsonfeed.org/version/ version")
    if len(entries) < len(items):
        warnings.append(f"{len(items) - len(entries)} items are not JSON objects and were skipped")
    return ParsedFeed(
        title=_str(doc.get("title")),
        link=_absolute(url, doc.get("home_page_url")),
        language=language,
        entries=entries,
        warning="; ".join(warnings) or None,
    )


def _json_entry(item: dict[str, Any], feed_language: str | None, base: str) -> Entry:
    return Entry(
        guid=_json_id(item.get("id")),
        link=_absolute(base, item.get("url") or item.get("external_url")),
        title=_escaped(item.get("title")),
        summary=_escaped(item.get("summary")),
        content=_json_content(item, base),
        author=_json_author(item),
        language=_str(item.get("language")) or feed_language,
        published=_iso_utc(item.get("date_published")),
        updated=_iso_utc(item.get("date_modified")),
    )


def _json_id(value: object) -> str | None:
    # The spec says string, but numbers are common; a bool is no id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value)


def _json_content(item: dict[str, Any], base: str) -> str | None:
    source = _str(item.get("content_html"))
    if source is None:
        return _escaped(item.get("content_text"))
    # Kept as the feed gave it, like feedparser's entries (see _feedparser).
    return _resolve_html(source, base)


def _json_author(item: dict[str, Any]) -> str | None:
    authors = item.get("authors")  # 1.1; 1.0 had a single "author"
    author = authors[0] if isinstance(authors, list) and authors else item.get("author")
    return _str(author.get("name")) if isinstance(author, dict) else None


def _iso_utc(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # RFC 3339 requires an offset; a date without one is taken as UTC rather than dropped.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- small helpers --------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _str(value: object) -> str | None:
    """A non-blank string, stripped, else None."""
    if isinstance(value, str) and (stripped := value.strip()):
        return stripped
    return None


def _escaped(value: object) -> str | None:
    text = _str(value)
    return html.escape(text, quote=False) if text is not None else None


def _join(*warnings: str | None) -> str | None:
    return "; ".join(w for w in warnings if w) or None

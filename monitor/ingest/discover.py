"""Look at a URL before it becomes a feed: `monitor feeds add` and `monitor feeds check`.

`probe` fetches a URL once and says what is there: a feed (its format, title, item count and
newest item), an HTML page (and the feeds it names), or the problem. It goes through
`ingest.fetch` and `ingest.parse` like a poll, but with a fresh state (no conditional GET) and
without the store: nothing is written anywhere.

`find_feed` is what `feeds add` does with a URL a person typed, often a site's home page: a
feed is taken as it is; an HTML page is searched for `<link rel="alternate">` elements of the
feed types (RSS, Atom, JSON Feed, as browsers and feed readers such as Miniflux do), with
relative addresses resolved against the page (and its `<base href>`). One such link is followed
and checked; several are returned for the person to choose. When the URL cannot be reached at
all (no network, a timeout, a server error), it is taken as given with a warning: the feed is
polled later anyway, and `feeds add` must work on a machine that is offline while editing.

The page is read with the standard library's `html.parser`, which accepts any tag soup and
never fetches or executes anything.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from monitor.errors import MonitorError, ParseError
from monitor.ingest.charset import decode
from monitor.ingest.feedcheck import is_feed_url, url_key
from monitor.ingest.fetch import Fetcher
from monitor.ingest.parse import parse
from monitor.models import Feed, FeedState, FetchResult, FetchStatus, ParsedFeed, Settings

__all__ = ["FeedLink", "Found", "Probe", "feed_links", "find_feed", "probe", "probe_feeds"]

# Link types that name a feed. `application/json` was JSON Feed 1.0's type; WordPress also
# uses it for its REST API (`/wp-json/...`), which is not a feed, so those links are skipped.
FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
}
PAGE_TEXT_LIMIT = 2 * 1024 * 1024  # characters of a page searched for links
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_START = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_COMMENT = re.compile(r"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>", re.S | re.I)
_FIRST_TAG = re.compile(r"<([A-Za-z_][\w:.-]*)([^>]*)>")
# Status codes after which a URL is worth trying again later: it may well be a feed.
_TEMPORARY = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FeedLink:
    """A feed an HTML page names: absolute URL, kind (RSS, Atom, JSON Feed), link title."""

    url: str
    kind: str
    title: str | None = None


@dataclass(frozen=True)
class Probe:
    """What one fetch of `url` found. `problem` is an error, or a warning on a feed that
    works (`status` ok); `links` are the feeds an HTML page names."""

    feed_id: str
    url: str
    status: FetchStatus
    http_status: int | None = None
    format: str | None = None
    title: str | None = None
    items: int | None = None
    newest: datetime | None = None
    problem: str | None = None
    page: bool = False
    links: tuple[FeedLink, ...] = ()

    @property
    def is_feed(self) -> bool:
        return self.status is FetchStatus.OK and self.format is not None

    @property
    def unreachable(self) -> bool:
        """No answer worth judging the URL by: the network, a timeout, a server error."""
        if self.status is not FetchStatus.ERROR or self.format is not None or self.page:
            return False
        return self.http_status is None or self.http_status in _TEMPORARY


async def probe(fetcher: Fetcher, feed_id: str, url: str, feed: Feed | None = None) -> Probe:
    """Fetch `url` once, without validators, and describe what came back. `feed` brings the
    login of a feed that has one."""
    state = FeedState(feed_id=feed_id, url=url, configured_url=url)
    result = await fetcher.fetch(feed_id, state, feed)
    found = Probe(feed_id, url, result.status, result.http_status, problem=result.error)
    if result.status is not FetchStatus.OK or result.body is None:
        # A fresh state sends no validators, so NOT_MODIFIED cannot come back here.
        return found
    try:
        parsed = parse(feed_id, result.body, result.headers, result.url)
    except ParseError as error:
        problem = f"{error.message} ({error.hint})" if error.hint else error.message
        found = replace(found, status=FetchStatus.ERROR, problem=problem)
        return _as_page(found, result) if _is_html(result) else found
    return _as_feed(found, result, parsed)


async def probe_feeds(feeds: Sequence[Feed], settings: Settings) -> list[Probe]:
    """Probe every feed at once (the fetcher bounds concurrency), in the given order."""
    async with Fetcher(settings) as fetcher:
        return list(await asyncio.gather(*(probe(fetcher, f.id, f.url, f) for f in feeds)))


@dataclass(frozen=True)
class Found:
    """What `feeds add` should add: `url` and the feed's own `title`; or, when the page names
    several feeds, no `url` and the `choices`. `page` is the page the feed was found on;
    `warning` says why the URL is added unchecked."""

    url: str | None
    title: str | None = None
    kind: str | None = None
    page: str | None = None
    choices: tuple[FeedLink, ...] = ()
    warning: str | None = None


async def find_feed(url: str, settings: Settings) -> Found:
    """The feed at `url`, or named by the page at `url`. Raises MonitorError when there is
    none to be found (see the module docstring for what is tried)."""
    async with Fetcher(settings) as fetcher:
        first = await probe(fetcher, "new", url)
        if first.is_feed:
            return Found(url=url, title=first.title, kind=first.format)
        if first.unreachable:
            return Found(url=url, warning=_unchecked(url, first))
        if not first.page:
            raise MonitorError(f"{url}: {first.problem}")
        if not first.links:
            raise MonitorError(
                f'{url} is an HTML page that names no feed (no <link rel="alternate"> of an '
                "RSS, Atom or JSON Feed type)",
                hint="find the feed's address on the site and add that",
            )
        if len(first.links) > 1:
            return Found(url=None, page=url, choices=first.links)
        link = first.links[0]
        second = await probe(fetcher, "new", link.url)
    if second.is_feed:
        return Found(url=link.url, title=second.title, kind=second.format, page=url)
    if second.unreachable:
        return Found(url=link.url, kind=link.kind, page=url, warning=_unchecked(link.url, second))
    raise MonitorError(
        f"{url} names the feed {link.url}, but that is not a working feed: {second.problem}",
        hint="ask the site for its feed's address",
    )


def _unchecked(url: str, found: Probe) -> str:
    return f"could not check {url} now ({found.problem}); added as given"


# --- a feed ----------------------------------------------------------------------------------


def _as_feed(found: Probe, result: FetchResult, parsed: ParsedFeed) -> Probe:
    dates = [d for e in parsed.entries if (d := e.published or e.updated) is not None]
    problem = parsed.warning or (None if parsed.entries else "the feed has no items")
    return replace(
        found,
        format=feed_format(result.body or b"", result.headers.get("content-type", "")),
        title=parsed.title,
        items=len(parsed.entries),
        newest=max(dates, default=None),
        problem=problem,
    )


def feed_format(body: bytes, content_type: str) -> str:
    """`RSS 2.0`, `RSS 1.0`, `Atom 1.0`, `JSON Feed 1.1`... from the document's root element
    (the parse stage reads every kind the same way and does not keep which it was)."""
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if start in (b"{", b"["):
        try:
            version = str(json.loads(body).get("version", ""))
        except (ValueError, AttributeError, RecursionError):
            version = ""
        number = version.removeprefix("https://jsonfeed.org/version/")
        return f"JSON Feed {number}" if number != version else "JSON Feed"
    text = _COMMENT.sub("", decode(body[:65536], content_type)[0])
    match = _FIRST_TAG.search(text)
    name, attrs = (match[1], match[2]) if match else ("", "")
    local = name.rpartition(":")[2].lower()
    if local == "rss":
        declared = re.search(r"""version\s*=\s*["']([\d.]+)""", attrs)
        return f"RSS {declared[1]}" if declared else "RSS"
    if local == "rdf":
        return "RSS 1.0"
    if local == "feed":
        return "Atom 0.3" if "purl.org/atom/ns#" in attrs else "Atom 1.0"
    return f"<{name}>" if name else "unknown"


# --- an HTML page ---------------------------------------------------------------------------


def _is_html(result: FetchResult) -> bool:
    content_type = result.headers.get("content-type", "").lower()
    head = (result.body or b"")[:4096].decode("latin-1")
    return content_type.startswith(_HTML_TYPES) or bool(_HTML_START.match(head))


def _as_page(found: Probe, result: FetchResult) -> Probe:
    text = _page_text(result.body or b"", result.headers.get("content-type", ""))
    return replace(found, page=True, links=feed_links(text, result.url))


def _page_text(body: bytes, content_type: str) -> str:
    """The page decoded by its HTTP charset or `<meta charset>`, else UTF-8; a bad byte in a
    page only costs a character of a link title."""
    label = re.search(r"charset=\s*[\"']?([\w.:-]+)", content_type, re.I)
    meta = _META_CHARSET.search(body[:4096])
    name = label[1] if label else meta[1].decode("ascii") if meta else "utf-8"
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "").strip() for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]  # only the first <base> counts, as in browsers
        elif tag == "link":
            self.links.append(values)


def feed_links(page: str, url: str) -> tuple[FeedLink, ...]:
    """The feeds an HTML page names, in page order, once each, as absolute http(s) URLs."""
    finder = _LinkFinder()
    try:
        finder.feed(page[:PAGE_TEXT_LIMIT])
        finder.close()
    except AssertionError:
        # html.parser gives up on a few malformed declarations (`<![ x`) this way; the links
        # before the spot are still good, and feeds are named in the <head>, near the top.
        pass
    base = urljoin(url, finder.base) if finder.base else url
    found: dict[str, FeedLink] = {}
    for attrs in finder.links:
        kind = FEED_TYPES.get(attrs.get("type", "").split(";")[0].strip().lower())
        rel = attrs.get("rel", "").lower().split()
        if kind is None or "alternate" not in rel or not attrs.get("href"):
            continue
        href = urljoin(base, attrs["href"])
        if not is_feed_url(href) or "/wp-json/" in urlsplit(href).path:
            continue
        found.setdefault(url_key(href), FeedLink(href, kind, attrs.get("title") or None))
    return tuple(found.values())

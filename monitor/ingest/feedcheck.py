"""Value checks for `rules/feeds.yaml`: feed URLs, ids, tags, regions and intervals, and the
rules of feed identity (`derive_feed_id`, `url_key`).

Each `_as_*` converter raises `Invalid` without knowing where the value came from (see
`yamlfile.check`); the loader in `feeds` adds the place, and `FeedsFile` checks the values of an
added feed with the same converters. Its own module, like `digest.channelcheck`, so that the
loader and editor in `feeds` read apart from the rules for single values; `opml` needs only
`is_feed_url`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from monitor.yamlfile.check import Invalid, as_duration, as_text, as_words, format_duration

__all__ = ["derive_feed_id", "has_credentials", "is_feed_url", "url_key"]

MIN_INTERVAL = timedelta(minutes=1)
MAX_ID_LENGTH = 64

_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
# Tags are queried as `tag:NAME`, so no spaces or query syntax; `/` and `,` separate OPML
# categories.
_TAG_RE = re.compile(r"[^\s:()\"',/]+")
# ISO 3166-1 alpha-2 (`TW`) or a gazetteer code (`TW-KIN`, `senkaku`): only the shape here.
_REGION_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,39}")
_FEED_FILE_SUFFIX = re.compile(r"\.(xml|rss|rdf|atom|json|php|cgi|aspx?)$", re.IGNORECASE)


def derive_feed_id(url: str, taken: Collection[str] = ()) -> str:
    """A readable id from the URL's host, path and query (`example-org-news`), made unique in
    `taken` with a `-2`, `-3`... suffix. The port is left out so that a feed served on a
    changing local port keeps its id."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.")
        text = f"{host} {_FEED_FILE_SUFFIX.sub('', parts.path.rstrip('/'))} {parts.query}"
    except ValueError:  # not a URL urllib can split (a bad IPv6 host): use it all
        text = url.partition("://")[2]
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())
    base = slug.strip("-")[:MAX_ID_LENGTH].rstrip("-") or "feed"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base[: MAX_ID_LENGTH - 4].rstrip('-')}-{n}", n + 1
    return candidate


def url_key(url: str) -> str:
    """What makes two feed URLs the same: the case of scheme and host, a default port and
    the fragment do not count."""
    try:
        parts = urlsplit(url.strip())
        default = {"http": 80, "https": 443}.get(parts.scheme.lower())
        port = "" if parts.port in (None, default) else f":{parts.port}"
    except ValueError:  # an invalid URL is only ever equal to itself
        return url.strip()
    return f"{parts.scheme.lower()}://{parts.hostname}{port}{parts.path or '/'}?{parts.query}"


def is_feed_url(url: str) -> bool:
    """An absolute http(s) URL with a host (and a valid port, if any)."""
    try:
        parts = urlsplit(url)
        absolute = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        return absolute and parts.port != 0 and not re.search(r"\s", url)
    except ValueError:  # a bad port or IPv6 host
        return False


def has_credentials(url: str) -> bool:
    """Whether the URL carries `user@` or `user:password@`."""
    try:
        return urlsplit(url).username is not None
    except ValueError:
        return "@" in url.partition("://")[2].partition("/")[0]


def _as_url(value: Any) -> str:
    url = as_text("url", value)
    # Checked first, and the URL is not echoed: a password in it would end up in the status
    # output, the logs and the database.
    if has_credentials(url):
        hint = (
            "remove them from the URL, and name environment variables under the feed "
            "instead: username_env: FEED_USER and password_env: FEED_PASSWORD"
        )
        host = url.partition("://")[2].split("/")[0].rpartition("@")[2]  # never the password
        raise Invalid(f"the feed 'url' for {host} carries credentials (user:password@)", hint)
    if not is_feed_url(url):
        raise Invalid(f"'url' must be an absolute http(s) URL, got {url!r}", "e.g. https://...")
    return url


def _as_id(value: Any) -> str:
    text = as_text("id", value)
    if not _ID_RE.fullmatch(text) or len(text) > MAX_ID_LENGTH:
        hint = f"lower-case letters, digits and '-', at most {MAX_ID_LENGTH} characters"
        raise Invalid(f"bad feed id {text!r}", hint)
    return text


def _as_interval(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        value = format_duration(value)
    return as_duration("interval", MIN_INTERVAL, value)


_tags = partial(as_words, "tags", _TAG_RE)
_regions = partial(as_words, "regions", _REGION_RE)

"""The fields of the fast parse path (see `fastparse`): what each element of an entry or
of the feed gives, mirroring feedparser's handlers for it, and which elements are harmless
(feedparser stores them under keys `parse` never reads).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.urls import _urljoin
from lxml import etree

from monitor.ingest.fastxml import (
    Declined,
    attributes,
    element_name,
    harmless,
    map_type,
    once,
    text_construct,
    text_of,
    value_of,
)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")


# --- entry fields ---------------------------------------------------------------------------


Reader = Callable[[dict[str, Any], etree._Element, dict[str, str], str | None, bool], Any]


class _Field:
    def __init__(self, key: str, read: Reader) -> None:
        self.key = key
        self.read = read


def _title(
    entry: dict[str, Any], el: etree._Element, attrs: dict[str, str], lang: str | None, rss: bool
) -> None:
    entry["title_detail"] = detail = text_construct(el, attrs, lang, "text/plain", rss)
    entry["title"] = detail["value"]


def _summary_reader(default: str) -> Reader:
    def read(
        entry: dict[str, Any],
        el: etree._Element,
        attrs: dict[str, str],
        lang: str | None,
        rss: bool,
    ) -> None:
        entry["summary_detail"] = detail = text_construct(el, attrs, lang, default, rss)
        entry["summary"] = detail["value"]

    return read


def _content_reader(default: str) -> Reader:
    def read(
        entry: dict[str, Any],
        el: etree._Element,
        attrs: dict[str, str],
        lang: str | None,
        rss: bool,
    ) -> None:
        detail = text_construct(el, attrs, lang, default, rss)
        entry["content"] = [detail]

    return read


def _guid(
    entry: dict[str, Any], el: etree._Element, attrs: dict[str, str], lang: str | None, rss: bool
) -> str | None:
    is_link = attrs.get("ispermalink", "true") == "true"
    entry["id"] = value = value_of(el, relative=is_link)
    return value if is_link else None


def _link(
    entry: dict[str, Any], el: etree._Element, attrs: dict[str, str], lang: str | None, rss: bool
) -> None:
    if (href := link_href(attrs)) is not None:
        if _is_alternate(attrs):
            entry["link"] = href
        return
    entry["link"] = _entity_fix(value_of(el, relative=True).replace("&amp;", "&"))


def _entity_fix(link: str) -> str:
    """feedparser's repair of `?a=1&b;=2`: a link's `&name;` loses its semicolon."""
    return _ENTITY_IN_LINK.sub(r"&\g<1>", link) if "&" in link and ";" in link else link


def _date_reader(key: str) -> Reader:
    def read(
        entry: dict[str, Any],
        el: etree._Element,
        attrs: dict[str, str],
        lang: str | None,
        rss: bool,
    ) -> None:
        entry[key] = _parse_date(value_of(el))

    return read


def _author(
    entry: dict[str, Any], el: etree._Element, attrs: dict[str, str], lang: str | None, rss: bool
) -> None:
    if not len(el):
        entry["author"] = value_of(el)
        return
    # Atom: <name>, <email>, <uri> children; feedparser joins them as "name (email)".
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise Declined
    parts: dict[str, str] = {}
    for child in el:
        name = element_name(child)
        attributes(child)
        key = {"name": "name", "email": "email", "uri": "href", "url": "href"}.get(name)
        if key is None or key in parts:
            raise Declined
        parts[key] = text_of(child).strip()  # feedparser only strips these (no `repair`)
    person, email = parts.get("name"), parts.get("email")
    entry["author"] = f"{person} ({email})" if person and email else person or email or ""


def link_href(attrs: dict[str, str]) -> str | None:
    """An Atom-style link's target, resolved as feedparser does; None for an RSS <link>."""
    if not ({"href", "url", "uri"} & attrs.keys()):
        return None
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if not href:
        raise Declined
    return str(_urljoin("", href))


def _is_alternate(attrs: dict[str, str]) -> bool:
    rel = attrs.get("rel", "alternate")
    default = "application/atom+xml" if rel == "self" else "text/html"
    return rel == "alternate" and map_type(attrs.get("type", default)) in _HTML_TYPES


ENTRY_FIELDS: dict[str, _Field] = {
    "title": _Field("title", _title),
    "dc_title": _Field("title", _title),
    "description": _Field("summary", _summary_reader("text/html")),
    "dc_description": _Field("summary", _summary_reader("text/html")),
    "summary": _Field("summary", _summary_reader("text/plain")),
    "content_encoded": _Field("content", _content_reader("text/html")),
    "content": _Field("content", _content_reader("text/plain")),
    "guid": _Field("id", _guid),
    "id": _Field("id", _guid),
    "link": _Field("link", _link),
    "pubdate": _Field("published", _date_reader("published_parsed")),
    "published": _Field("published", _date_reader("published_parsed")),
    "dcterms_issued": _Field("published", _date_reader("published_parsed")),
    "issued": _Field("published", _date_reader("published_parsed")),
    "updated": _Field("updated", _date_reader("updated_parsed")),
    "dc_date": _Field("updated", _date_reader("updated_parsed")),
    "dcterms_modified": _Field("updated", _date_reader("updated_parsed")),
    "modified": _Field("updated", _date_reader("updated_parsed")),
    "lastbuilddate": _Field("updated", _date_reader("updated_parsed")),
    "author": _Field("author", _author),
    "dc_creator": _Field("author", _author),
    "dc_author": _Field("author", _author),
}
# Elements with a feedparser handler that only stores keys `parse` never reads.
ENTRY_HARMLESS = frozenset(
    {"category", "dc_subject", "enclosure", "source", "media_content", "media_thumbnail"}
)
_FEED_HARMLESS = frozenset(
    {
        "description", "subtitle", "rights", "copyright", "generator", "pubdate",
        "lastbuilddate", "updated", "published", "dc_date", "dcterms_modified", "category",
        "dc_subject", "managingeditor", "webmaster", "dc_publisher", "dc_rights", "cloud",
    }
)  # fmt: skip
_IMAGE_PARTS = frozenset({"title", "link", "url", "width", "height", "description"})
_TEXTINPUT_PARTS = frozenset({"title", "link", "description", "name"})


# --- feed-level fields ----------------------------------------------------------------------


def feed_element(
    feed: dict[str, Any],
    seen: set[str],
    name: str,
    el: etree._Element,
    attrs: dict[str, str],
    lang: str | None,
    rss: bool,
) -> None:
    if name in ("title", "dc_title"):
        once(seen, "title")
        feed["title_detail"] = detail = text_construct(el, attrs, lang, "text/plain", rss)
        feed["title"] = detail["value"]
    elif name == "link":
        if (href := link_href(attrs)) is not None:
            if _is_alternate(attrs):
                feed["link"] = href
            return
        once(seen, "link")
        feed["link"] = _entity_fix(value_of(el, relative=True))
    elif name == "id":
        once(seen, "id")
        is_link = attrs.get("ispermalink", "true") == "true"
        value = value_of(el, relative=is_link)
        if is_link:
            feed.setdefault("link", value)
    elif name in ("language", "dc_language"):
        once(seen, "language")
        feed["language"] = value_of(el)
    elif name in ("image", "textinput"):
        once(seen, name)
        _parts(el, _IMAGE_PARTS if name == "image" else _TEXTINPUT_PARTS)
    elif name in ("author", "dc_creator", "dc_author"):
        _author({}, el, attrs, lang, rss)  # checks its shape; feed authors are not read
    else:
        harmless(name, el, _FEED_HARMLESS)


def _parts(el: etree._Element, allowed: frozenset[str]) -> None:
    """<image> and <textinput> keep their title and link to themselves only when every child
    is one feedparser expects there (any other resets its in-image state)."""
    for child in el:
        if element_name(child) not in allowed or len(child):
            raise Declined
        attributes(child)

"""The primitives of the fast parse path (see `fastparse`): elements, attributes and text
as feedparser's SAX handlers see them, and the end of its `pop` that every text goes through.

`Declined` is raised wherever a document leaves the subset mirrored exactly.
"""

from __future__ import annotations

import contextlib
import re
from functools import cache
from typing import Any

from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from lxml import etree

# Namespace URI (lower case) -> feedparser's prefix for it ("" for the core formats).
PREFIXES: dict[str, str] = {k.lower(): v for k, v in _FeedParserMixin.namespaces.items()}
# Keys `parse` reads: an unknown element with such a name would be stored over them.
RESERVED = frozenset(
    {"title_detail", "summary_detail", "published_parsed", "updated_parsed", "links", "authors"}
)
_C1 = re.compile("[\x80-\x9f]")
_SHORT_TYPES = {
    "text": "text/plain",
    "plain": "text/plain",
    "html": "text/html",
    "xhtml": "application/xhtml+xml",
}
_BEYOND_LATIN1 = re.compile("[^\x00-\xff]")


class Declined(Exception):
    """The document is outside what this module mirrors: feedparser reads it."""


# --- names, attributes and text as feedparser sees them -------------------------------------


@cache
def has_handler(name: str) -> bool:
    return hasattr(_FeedParserMixin, f"_start_{name}") or hasattr(_FeedParserMixin, f"_end_{name}")


def element_name(el: etree._Element) -> str:
    """feedparser's name for an element (`dc_creator`, `title`); declines surprises."""
    tag = el.tag
    if not isinstance(tag, str):
        raise Declined  # an entity reference left in the tree
    if tag[0] != "{":
        return tag.lower()
    uri, _, local = tag[1:].partition("}")
    local = local.lower()
    prefix = PREFIXES.get(uri.lower())
    if prefix is None:
        # An unknown namespace: feedparser names the element after the document's prefix.
        given = (el.prefix or "").lower()
        if has_handler(local) or (given and has_handler(f"{given}_{local}")):
            raise Declined
        if "backend.userland.com/rss" in uri.lower():
            raise Declined
        return f"?{local}"  # no handler has this name
    return f"{prefix}_{local}" if prefix else local


def attributes(el: etree._Element) -> dict[str, str]:
    """Attributes keyed as feedparser keys them (lower case, `xml:lang`, `rdf:about`)."""
    out: dict[str, str] = {}
    items = el.items()  # most elements have none: this is the cheap way to find out
    if not items:
        return out
    for key, value in items:
        key = str(key)
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            prefix = PREFIXES.get(uri.lower(), "")
            key = f"{prefix}:{local}" if prefix else local
        key = key.lower()
        # feedparser lower-cases these two values (rel="Alternate" is "alternate").
        out[key] = str(value).lower() if key in ("rel", "type") else str(value)
    if "xml:base" in out or "base" in out:
        raise Declined  # feedparser's base tracking does not follow element scope
    return out


def language_of(attrs: dict[str, str], parent: str | None) -> str | None:
    lang = attrs.get("xml:lang", attrs.get("lang"))
    if lang is None:
        return parent
    return lang or None  # xml:lang="" means no language


def text_of(el: etree._Element) -> str:
    if len(el):
        raise Declined  # markup inside a text element: feedparser's inline XHTML rules
    return el.text or ""


def repair(value: str) -> str:
    """The end of feedparser's `pop`: UTF-8 read as Latin-1 repaired, C1 as windows-1252."""
    if value.isascii():
        return value
    # A character past U+00FF makes the Latin-1 encode fail; finding one first is ~50x
    # cheaper than the exception on long CJK text.
    if not _BEYOND_LATIN1.search(value):
        with contextlib.suppress(UnicodeDecodeError):
            value = value.encode("iso-8859-1").decode("utf-8")
    # translate() with a dict costs ~25 us per KB: only when a C1 character is there.
    return value.translate(_cp1252) if _C1.search(value) else value


def value_of(el: etree._Element, *, relative: bool = False) -> str:
    value = text_of(el).strip()
    if relative and value:
        value = str(_urljoin("", value))
    return repair(value)


def map_type(value: str) -> str:
    """feedparser's `map_content_type`: Atom's short names as media types."""
    value = value.lower()
    return _SHORT_TYPES.get(value, value)


def content_type(attrs: dict[str, str], default: str) -> str:
    if "mode" in attrs or "src" in attrs:
        raise Declined  # base64 or out-of-line content
    ctype = map_type(attrs.get("type", default))
    if ctype not in ("text/plain", "text/html"):
        raise Declined
    return ctype


def check_cdf(attrs: dict[str, str]) -> None:
    if "lastmod" in attrs or "href" in attrs:
        raise Declined  # CDF-style attributes feedparser turns into fields


def once(seen: set[str], key: str) -> None:
    if key in seen:
        raise Declined  # given twice: feedparser's depth and order rules pick one
    seen.add(key)


def harmless(name: str, el: etree._Element, known: frozenset[str]) -> None:
    """An element `parse` never reads from; declines any that could feed a field."""
    if name in known:
        if len(el):
            raise Declined
        return
    if has_handler(name) or name in RESERVED:
        raise Declined
    for child in el.iter():
        if child is not el:
            attributes(child)
            name = element_name(child)
            if has_handler(name) or name in RESERVED:
                raise Declined


def text_construct(
    el: etree._Element, attrs: dict[str, str], lang: str | None, default: str, rss: bool
) -> dict[str, Any]:
    """A feedparser text construct: type, language, base and value."""
    ctype = content_type(attrs, default)
    value = text_of(el).strip()
    # RSS titles are nominally plain text; feedparser guesses (Atom says what it is).
    if rss and ctype == "text/plain" and _FeedParserMixin.looks_like_html(value):
        ctype = "text/html"
    language = lang.replace("_", "-") if lang else lang
    return {"type": ctype, "language": language, "base": "", "value": repair(value)}

"""OPML in and out: how feed readers exchange subscription lists.

Import reads every `<outline xmlUrl=...>`; the folders (outlines without `xmlUrl`) around it
and its `category` attribute (comma-separated, slash-delimited paths, as OPML 2.0 says)
become tags. A feed listed in several folders comes out once, with the tags of all of them.

The file comes from elsewhere, so the parser refuses any DOCTYPE: entity declarations are
how "billion laughs" and external-entity attacks get in, and OPML never needs them. This is
the stdlib expat parser with a handler that stops at the DOCTYPE, so no extra dependency.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn
from xml.parsers import expat

from monitor.errors import ConfigError
from monitor.ingest.feedcheck import is_feed_url
from monitor.models import Feed

MAX_FOLDER_DEPTH = 16  # deeper folders add no tags


@dataclass(frozen=True)
class ImportedFeed:
    """One feed found in an OPML file; `line` is where its outline starts."""

    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    line: int | None = None


@dataclass
class _Node:
    name: str
    attrs: dict[str, str]  # names lower-cased: exporters disagree on `xmlUrl` vs `xmlurl`
    line: int
    children: list[_Node] = field(default_factory=list)


def import_opml(data: bytes, source: str) -> list[ImportedFeed]:
    """The feeds of an OPML document, in document order. `source` names the file in errors."""
    root = _parse(data, source)
    if root.name != "opml":
        _fail(source, f"not an OPML file: the root element is <{root.name}>", root.line)
    body = next((child for child in root.children if child.name == "body"), None)
    if body is None:
        _fail(source, "not an OPML file: no <body> element", root.line)
    found: dict[str, ImportedFeed] = {}
    for outline, folders in _outlines(body):
        feed = _feed(outline, folders, source)
        if (known := found.get(feed.url)) is not None:
            feed = replace(known, tags=tuple(dict.fromkeys(known.tags + feed.tags)))
        found[feed.url] = feed
    return list(found.values())


def export_opml(feeds: Sequence[Feed], title: str) -> str:
    """An OPML 2.0 document listing `feeds`, tags as `category`. Deterministic: no date."""
    root = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(root, "head"), "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        # `text` is required; an untitled feed shows its URL, which import reads as no title.
        attrs = {"type": "rss", "text": feed.title or feed.url, "xmlUrl": feed.url}
        if feed.title:
            attrs["title"] = feed.title
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root, space="  ")
    xml = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{xml}\n'


def _fail(source: str, message: str, line: int | None, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, path=source, line=line, hint=hint)


def _parse(data: bytes, source: str) -> _Node:
    parser = expat.ParserCreate()
    top = _Node("", {}, 0)
    stack = [top]

    def start(name: str, attrs: dict[str, str]) -> None:
        node = _Node(name, {k.lower(): v for k, v in attrs.items()}, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def refuse_doctype(*_: object) -> None:
        hint = "remove the <!DOCTYPE ...> declaration; OPML does not need one"
        _fail(source, "DOCTYPE declarations are not allowed", parser.CurrentLineNumber, hint)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: stack.pop()
    parser.StartDoctypeDeclHandler = refuse_doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        message = f"not a valid OPML file: {expat.ErrorString(error.code)}"
        raise ConfigError(
            message, path=source, line=error.lineno, column=error.offset + 1
        ) from None
    if not top.children:
        _fail(source, "not a valid OPML file: no root element", None)
    return top.children[0]


def _outlines(body: _Node) -> list[tuple[_Node, tuple[str, ...]]]:
    """Every feed outline under `body` with the folder names above it, in document order.
    A loop, not recursion, and a cap on folder depth: the file may be nested on purpose."""
    found: list[tuple[_Node, tuple[str, ...]]] = []
    stack: list[tuple[_Node, tuple[str, ...]]] = [(c, ()) for c in reversed(body.children)]
    while stack:
        node, folders = stack.pop()
        if node.name != "outline":
            continue
        if node.attrs.get("xmlurl"):
            found.append((node, folders))
            folder = ""  # a feed is not a folder, even if an exporter nests things under it
        else:
            folder = (node.attrs.get("text") or node.attrs.get("title") or "").strip()
        inner = (*folders, folder) if folder and len(folders) < MAX_FOLDER_DEPTH else folders
        stack.extend((child, inner) for child in reversed(node.children))
    return found


def _feed(outline: _Node, folders: tuple[str, ...], source: str) -> ImportedFeed:
    url = outline.attrs["xmlurl"].strip()
    if not is_feed_url(url):
        hint = "fix or delete this outline, then import again"
        _fail(source, f"xmlUrl is not an absolute http(s) URL: {url!r}", outline.line, hint)
    text = (outline.attrs.get("title") or outline.attrs.get("text") or "").strip()
    title = None if text in ("", url) else text
    categories = outline.attrs.get("category", "").replace("/", ",").split(",")
    tags = dict.fromkeys(filter(None, (_tag(name) for name in (*folders, *categories))))
    return ImportedFeed(url=url, title=title, tags=tuple(tags), line=outline.line)


def _tag(name: str) -> str:
    """A folder or category name as a tag: `World News` -> `world-news`."""
    folded = unicodedata.normalize("NFKC", name).strip().lower()
    return re.sub(r"[\s:()\"',/]+", "-", folded).strip("-")

"""OPML in and out: how feed readers exchange subscription lists.

Import reads every `<outline xmlUrl=...>`; the folders (outlines without `xmlUrl`) around it
and its `category` attribute (comma-separated, slash-delimited paths, as OPML 2.0 says)
become tags. A folder or category name that is already a valid tag is kept exactly as written
(`Asia`, `台湾`); one that is not gets `-` in place of its spaces and punctuation
(`Japan Desk` -> `Japan-Desk`). A feed listed in several folders comes out once, with the tags
of all of them.

What OPML has no attribute for travels in monitor's own namespace (`xmlns:monitor`, see
`NAMESPACE`): `monitor:id`, `monitor:interval`, `monitor:enabled`, `monitor:regions`, and the
names (never the values) of a login's variables, `monitor:username_env` and
`monitor:password_env`.
Export writes them for every feed and import reads them, so export -> import gives back the
same feeds; other readers ignore attributes in a namespace they do not know.

The file comes from elsewhere, so the parser refuses any DOCTYPE: entity declarations are
how "billion laughs" and external-entity attacks get in, and OPML never needs them. This is
the stdlib expat parser with a handler that stops at the DOCTYPE, so no extra dependency.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn
from xml.parsers import expat

from monitor.errors import ConfigError
from monitor.ingest.feedcheck import _as_id, _as_interval, _regions, has_credentials, is_feed_url
from monitor.models import Feed
from monitor.yamlfile.check import Invalid, as_env_name, format_duration

if TYPE_CHECKING:
    from monitor.ingest.feeds import FeedsFile

# A name, not a place: nothing is ever fetched from it. A URN, because no web page says
# anything at this address.
NAMESPACE = "urn:x-monitor:opml"
MAX_FOLDER_DEPTH = 16  # deeper folders add no tags
_SEP = "\x1f"  # what expat puts between a namespace and a local name (never in either)
# What a tag may not contain (see feedcheck: tags are queried as `tag:NAME`).
_NOT_IN_TAG = re.compile(r"[\s:()\"',/]+")
_LOGIN = ("username_env", "password_env")

ET.register_namespace("monitor", NAMESPACE)


@dataclass(frozen=True)
class ImportedFeed:
    """One feed found in an OPML file; `line` is where its outline starts. `id` and
    `interval` are None when the outline does not say (derived or default on import)."""

    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    line: int | None = None
    id: str | None = None
    interval: timedelta | None = None
    enabled: bool = True
    regions: tuple[str, ...] = ()
    login: tuple[str, str] | None = None  # names of the username and password variables


@dataclass
class _Node:
    name: str
    attrs: dict[str, str]  # lower-cased: exporters disagree on `xmlUrl` vs `xmlurl`
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
            feed = replace(known, tags=_unique(known.tags + feed.tags))
        found[feed.url] = feed
    return list(found.values())


def export_opml(feeds: Sequence[Feed], title: str) -> str:
    """An OPML 2.0 document listing `feeds`, tags as `category`, and what OPML cannot say in
    monitor's namespace. Deterministic: no date."""
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
        attrs[_qualified("id")] = feed.id
        attrs[_qualified("interval")] = format_duration(feed.interval)
        attrs[_qualified("enabled")] = "true" if feed.enabled else "false"
        if feed.regions:
            attrs[_qualified("regions")] = ",".join(feed.regions)
        if feed.username_env is not None and feed.password_env is not None:
            attrs[_qualified("username_env")] = feed.username_env
            attrs[_qualified("password_env")] = feed.password_env
        ET.SubElement(body, "outline", attrs)
    ET.indent(root, space="  ")
    xml = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{xml}\n'


def add_imported(edit: FeedsFile, feeds: Iterable[ImportedFeed], source: str) -> tuple[int, int]:
    """Queue every feed not yet in `edit` (same URL); (added, already present). An id that
    another feed of the file already uses is an error naming the outline, not a silent rename:
    the id is what keeps a feed's stored history."""
    added = skipped = 0
    for feed in feeds:
        if edit.has_url(feed.url):
            skipped += 1
            continue
        owner = None if feed.id is None else edit.feed_with_id(feed.id)
        if owner is not None:
            hint = f"{edit.path} gives it to {owner.url}; change one of the two ids"
            _fail(source, f"monitor:id {feed.id!r} is already taken", feed.line, hint)
        edit.add(
            feed.url,
            id=feed.id,
            title=feed.title,
            tags=feed.tags,
            regions=feed.regions,
            interval=feed.interval,
            enabled=feed.enabled,
            login=feed.login,
        )
        added += 1
    return added, skipped


def _qualified(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _fail(source: str, message: str, line: int | None, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, path=source, line=line, hint=hint)


def _parse(data: bytes, source: str) -> _Node:
    parser = expat.ParserCreate(namespace_separator=_SEP)
    top = _Node("", {}, 0)
    stack = [top]

    def start(name: str, attrs: dict[str, str]) -> None:
        named = {_attr_name(key): value for key, value in attrs.items()}
        node = _Node(_local(name), named, parser.CurrentLineNumber)
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
        hint = None
        if error.code == expat.errors.codes[expat.errors.XML_ERROR_UNBOUND_PREFIX]:
            hint = f'declare the prefix on <opml>, e.g. xmlns:monitor="{NAMESPACE}"'
        raise ConfigError(
            message, path=source, line=error.lineno, column=error.offset + 1, hint=hint
        ) from None
    if not top.children:
        _fail(source, "not a valid OPML file: no root element", None)
    return top.children[0]


def _local(name: str) -> str:
    """An element's name without its namespace: some exporters put OPML in a default one."""
    return name.rpartition(_SEP)[2]


def _attr_name(name: str) -> str:
    """`monitor:id` for ours, the lower-cased name for plain ones; others stay unreadable."""
    space, _, local = name.rpartition(_SEP)
    if space == NAMESPACE:
        return f"monitor:{local.lower()}"
    return name.lower() if not space else name


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
    hint = "fix or delete this outline, then import again"
    if has_credentials(url):  # not echoed: the password would land in the terminal's history
        _fail(source, "xmlUrl carries credentials (user:password@)", outline.line, hint)
    if not is_feed_url(url):
        _fail(source, f"xmlUrl is not an absolute http(s) URL: {url!r}", outline.line, hint)
    text = (outline.attrs.get("title") or outline.attrs.get("text") or "").strip()
    categories = outline.attrs.get("category", "").replace("/", ",").split(",")
    feed = ImportedFeed(
        url=url,
        title=None if text in ("", url) else text,
        tags=_unique(filter(None, (_tag(name) for name in (*folders, *categories)))),
        line=outline.line,
    )
    try:
        return _with_ours(feed, outline.attrs)
    except Invalid as error:
        _fail(source, error.message, outline.line, error.hint or hint)


def _with_ours(feed: ImportedFeed, attrs: dict[str, str]) -> ImportedFeed:
    """The feed with the `monitor:` attributes of its outline, checked like the same keys in
    feeds.yaml."""
    if "monitor:id" in attrs:
        feed = replace(feed, id=_as_id(attrs["monitor:id"].strip()))
    if "monitor:interval" in attrs:
        feed = replace(feed, interval=_as_interval(attrs["monitor:interval"].strip()))
    if "monitor:enabled" in attrs:
        feed = replace(feed, enabled=_as_flag(attrs["monitor:enabled"]))
    if "monitor:regions" in attrs:
        codes = [code.strip() for code in attrs["monitor:regions"].split(",") if code.strip()]
        feed = replace(feed, regions=_regions(codes))
    names = [attrs.get(f"monitor:{key}") for key in _LOGIN]
    if names[0] is not None and names[1] is not None:
        login = tuple(as_env_name(f"monitor:{k}", v) for k, v in zip(_LOGIN, names, strict=True))
        feed = replace(feed, login=(login[0], login[1]))
    elif names != [None, None]:
        raise Invalid("a login needs both monitor:username_env and monitor:password_env")
    return feed


def _as_flag(value: str) -> bool:
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise Invalid(f"monitor:enabled must be true or false, got {value!r}")
    return flag == "true"


def _tag(name: str) -> str:
    """A folder or category name as a tag: kept as written when it is a valid tag, otherwise
    with `-` for what a tag cannot hold (`Japan Desk` -> `Japan-Desk`)."""
    return _NOT_IN_TAG.sub("-", name.strip()).strip("-")


def _unique(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags in order, once each: tags match case-blind (`tag:asia` finds `Asia`), so `Asia`
    and `asia` are one tag and the first spelling wins."""
    seen: dict[str, str] = {}
    for tag in tags:
        seen.setdefault(tag.casefold(), tag)
    return tuple(seen.values())

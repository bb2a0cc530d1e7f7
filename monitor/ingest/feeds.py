"""`rules/feeds.yaml`: load and validate it, and edit it in place for `monitor feeds ...`.

Every error names `file:line:column` (ruamel's round-trip mode keeps node positions, see
`yamlcheck`), and unknown keys are errors that suggest the closest known key.

Feed ids: an explicit `id:` wins; otherwise the id is derived from the URL alone, never from
the other feeds, so that editing one entry cannot rename another feed (and orphan its history
in the store). Two feeds ending up with one id is therefore an error naming both lines.

Edits (`FeedsFile`) splice text rather than re-dump the document, so comments, blank lines and
quoting outside the edited entry stay byte for byte (see `yamledit`). Every edit is loaded
again and compared with what was meant before it is kept: `save()` never writes a file that
`load_feeds` would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from monitor.errors import ConfigError
from monitor.ingest.feedcheck import (
    _as_id,
    _as_interval,
    _as_url,
    _regions,
    _tags,
    derive_feed_id,
    url_key,
)

# The YAML of an added feed (its own module: the shape of one entry, not the file's rules).
from monitor.ingest.feedentry import append_to_tree as _append_to_tree
from monitor.ingest.feedentry import new_entry as _entry
from monitor.ingest.feedindex import FeedIndex
from monitor.ingest.storyconf import story_settings
from monitor.models import DEFAULT_INTERVAL, Feed, Settings
from monitor.yamlfile import edit as yamledit
from monitor.yamlfile.check import (
    Checker,
    Invalid,
    Pos,
    as_bool,
    as_duration,
    as_env_name,
    as_int,
    as_seconds,
    as_size,
    as_text,
    format_duration,
    item_pos,
    parse_duration,
    parse_yaml,
    read_text,
    value_pos,
)

__all__ = ["FeedsConfig", "FeedsFile", "format_duration", "load_feeds", "parse_duration"]

TOP_KEYS = ("settings", "feeds")
FEED_KEYS: tuple[str, ...] = ("url", "id", "title", "tags", "regions", "interval", "enabled")
FEED_KEYS += ("username_env", "password_env")
TIMEOUT_KEYS = ("connect", "read", "total")
_LOGIN = ("username_env", "password_env")


@dataclass(frozen=True)
class FeedsConfig:
    """A validated `feeds.yaml`: the feeds in file order and the service settings."""

    feeds: tuple[Feed, ...]
    settings: Settings
    path: Path


ZERO, MINUTE = timedelta(0), timedelta(minutes=1)
# settings key -> (Settings field, converter)
_SETTINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "concurrency": ("concurrency", partial(as_int, "concurrency", 1)),
    "per_host": ("per_host", partial(as_int, "per_host", 1)),
    "max_body": ("max_body_bytes", partial(as_size, "max_body")),
    "max_redirects": ("max_redirects", partial(as_int, "max_redirects", 0)),
    "retention": ("retention", partial(as_duration, "retention", timedelta(days=1))),
    "user_agent": ("user_agent", partial(as_text, "user_agent")),
    # Old news is never alerted on (see poll.history_before); 0s: only what is new since.
    "first_poll_grace": ("first_poll_grace", partial(as_duration, "first_poll_grace", ZERO)),
    "alert_max_age": ("alert_max_age", partial(as_duration, "alert_max_age", MINUTE)),
    "lease": ("lease", partial(as_duration, "lease", timedelta(seconds=5))),
}
SETTINGS_KEYS = (*_SETTINGS, "timeout", "stories")


class _FeedsChecker(Checker):
    def document(self, doc: Any) -> tuple[tuple[Feed, ...], Settings]:
        if doc is None:  # an empty file, or only comments
            return (), Settings()
        top = self.mapping(doc, (1, 1), "the top level")
        self.keys(top, TOP_KEYS, "the top level")
        settings = self.settings(top) if top.get("settings") is not None else Settings()
        if top.get("feeds") is None:
            return (), settings
        if not isinstance(top["feeds"], CommentedSeq):
            self.fail("'feeds' must be a list of '- url: ...' entries", value_pos(top, "feeds"))
        return self.feeds(top["feeds"]), settings

    def settings(self, top: CommentedMap) -> Settings:
        node = self.mapping(top["settings"], value_pos(top, "settings"), "'settings'")
        self.keys(node, SETTINGS_KEYS, "settings")
        values = {
            field: self.value(node, key, convert, None)
            for key, (field, convert) in _SETTINGS.items()
            if key in node
        }
        if "timeout" in node:
            timeout = self.mapping(node["timeout"], value_pos(node, "timeout"), "'timeout'")
            self.keys(timeout, TIMEOUT_KEYS, "settings.timeout")
            for key in TIMEOUT_KEYS:
                seconds = partial(as_seconds, f"timeout.{key}")
                values[f"{key}_timeout"] = self.value(timeout, key, seconds, None)
        values.update(story_settings(self, node))
        return replace(Settings(), **{k: v for k, v in values.items() if v is not None})

    def feeds(self, seq: CommentedSeq) -> tuple[Feed, ...]:
        feeds: list[Feed] = []
        ids: dict[str, tuple[int, bool]] = {}  # id -> (line, written explicitly?)
        urls: dict[str, int] = {}
        for index, node in enumerate(seq):
            pos = item_pos(seq, index)
            line = pos[0] if pos else 0
            feed, explicit = self.feed(node, pos)
            self.unique_id(feed.id, (line, explicit), ids, pos)
            if (other := urls.setdefault(url_key(feed.url), line)) != line:
                message = f"duplicate feed url {feed.url!r}: already listed on line {other}"
                self.fail(message, pos, hint="remove one of the two entries")
            feeds.append(feed)
        return tuple(feeds)

    def unique_id(
        self, feed_id: str, this: tuple[int, bool], ids: dict[str, tuple[int, bool]], pos: Pos
    ) -> None:
        first = ids.setdefault(feed_id, this)
        if first == this:
            return
        derived = [f"line {line}" for line, explicit in (first, this) if not explicit]
        how = f" (derived from the url on {' and '.join(derived)})" if derived else ""
        message = f"duplicate feed id {feed_id!r}{how}: used on line {first[0]} and {this[0]}"
        self.fail(message, pos, hint="give one of them a different 'id:'")

    def feed(self, node: Any, pos: Pos) -> tuple[Feed, bool]:
        node = self.mapping(node, pos, "each feed")
        self.keys(node, FEED_KEYS, "a feed")
        if "url" not in node:
            self.fail("this feed has no 'url'", pos, hint="add 'url: https://...'")
        url = self.value(node, "url", _as_url, "")
        feed_id = self.value(node, "id", _as_id, None)
        feed = Feed(
            id=feed_id or derive_feed_id(url),
            url=url,
            title=self.value(node, "title", partial(as_text, "title"), None),
            tags=self.value(node, "tags", _tags, ()),
            regions=self.value(node, "regions", _regions, ()),
            interval=self.value(node, "interval", _as_interval, DEFAULT_INTERVAL),
            enabled=self.value(node, "enabled", partial(as_bool, "enabled"), True),
            **self.login(node, pos),
        )
        return feed, feed_id is not None

    def login(self, node: CommentedMap, pos: Pos) -> dict[str, str | None]:
        """The variables of an HTTP basic auth login: both or neither."""
        names = {
            key: self.value(node, key, partial(as_env_name, key), None)
            for key in ("username_env", "password_env")
        }
        if (names["username_env"] is None) != (names["password_env"] is None):
            missing = "password_env" if names["password_env"] is None else "username_env"
            self.fail(f"a feed logs in with both variables or neither: add '{missing}'", pos)
        return names


def _load_text(text: str, path: Path) -> tuple[Any, FeedsConfig]:
    doc = parse_yaml(text, path)
    feeds, settings = _FeedsChecker(path).document(doc)
    return doc, FeedsConfig(feeds=feeds, settings=settings, path=path)


# The last valid text of each path and what it gave: reading is cheap, parsing is not (~0.3 s
# for 1,000 feeds), and the console and the service load it again and again. Known by the whole
# text, not by the file's time, so that no edit goes unseen.
_LOADED: dict[Path, tuple[str, FeedsConfig]] = {}


def load_feeds(path: Path) -> FeedsConfig:
    """Read and validate `feeds.yaml`. A missing file means no feeds and default settings."""
    if not path.exists():
        return FeedsConfig(feeds=(), settings=Settings(), path=path)
    text = read_text(path)
    if (known := _LOADED.get(path)) is None or known[0] != text:
        known = _LOADED[path] = (text, _load_text(text, path)[1])
    return known[1]  # immutable: shared safely


class FeedsFile:
    """`feeds.yaml` opened for editing; `save()` writes it back atomically.

    Only a valid file can be edited. Added feeds are queued and spliced in together when the
    text is needed, so importing hundreds of feeds parses the file once, not once per feed, and
    a new feed's id and URL are looked up in dicts, not compared with every feed (linear).
    """

    def __init__(self, path: Path, text: str, on_disk: str | None) -> None:
        self.path = path
        self._on_disk = on_disk  # the file as read (None: absent), to refuse a lost update
        self._text = text
        self._doc, self._config = _load_text(text, path)
        self._queued: list[tuple[Feed, CommentedMap]] = []
        self._index = FeedIndex(self._config.feeds)  # the feeds in the file and queued
        # Every edit made, to make them again on a newer file: a feed added, an id removed.
        self._edits: list[tuple[Feed, CommentedMap] | str] = []

    @classmethod
    def load(cls, path: Path) -> FeedsFile:
        on_disk = read_text(path) if path.exists() else None
        return cls(path, on_disk or "", on_disk)

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return self._config.feeds + tuple(feed for feed, _ in self._queued)

    @property
    def config(self) -> FeedsConfig:
        self._flush()
        return self._config

    @property
    def text(self) -> str:
        """The file's text with the edits made so far."""
        self._flush()
        return self._text

    def has_url(self, url: str) -> bool:
        return self._index.has_url(url)

    def feed_with_id(self, feed_id: str) -> Feed | None:
        """The feed (in the file or queued) with this id, explicit or derived."""
        return self._index.with_id(feed_id)

    def add(
        self,
        url: str,
        *,
        id: str | None = None,
        title: str | None = None,
        tags: Iterable[str] = (),
        regions: Iterable[str] = (),
        interval: timedelta | str | None = None,
        enabled: bool = True,
        login: tuple[str, str] | None = None,
        dry_run: bool = False,
    ) -> Feed:
        """Append a feed. Its id (derived from the URL if not given) is written to the file,
        so it stays the same whatever happens to the other entries. `enabled` and `login`
        (the names of the username and password variables) come from an OPML import. With
        `dry_run`, everything is checked the same and nothing is added."""
        try:
            feed = self._new_feed(url, id, title, list(tags), list(regions), interval)
            feed = replace(feed, enabled=enabled)
            if login is not None:
                user, password = (as_env_name(k, v) for k, v in zip(_LOGIN, login, strict=True))
                feed = replace(feed, username_env=user, password_env=password)
        except Invalid as error:
            raise ConfigError(error.message, path=str(self.path), hint=error.hint) from None
        if dry_run:
            self._refuse_duplicate(feed)
        else:
            self._queue(feed, _entry(feed, with_interval=interval is not None))
        return feed

    def _queue(self, feed: Feed, entry: CommentedMap) -> None:
        self._refuse_duplicate(feed)
        self._queued.append((feed, entry))
        self._index.extend((feed,))
        self._edits.append((feed, entry))

    def remove(self, feed_id: str) -> Feed:
        """Delete the feed with this id (explicit or derived) and the comments glued to it."""
        self._flush()
        ids = [feed.id for feed in self.feeds]
        if feed_id not in ids:
            hint = "known ids: " + (", ".join(ids) or "none")
            raise ConfigError(f"no feed with id {feed_id!r}", path=str(self.path), hint=hint)
        index = ids.index(feed_id)
        removed = self.feeds[index]
        text = yamledit.remove_item(self._text, self._doc["feeds"], index)
        expected = self.feeds[:index] + self.feeds[index + 1 :]
        self._apply(text, expected, lambda doc: doc["feeds"].pop(index))
        self._edits.append(feed_id)
        return removed

    def save(self) -> None:
        """Write the file (temp file + rename) under its edit lock.

        Without the lock, two commands could each read the file, add a feed and write: both
        report success, one feed is lost. Under it, the file is read again; if another edit
        landed since `load`, this object's edits are made again on that version (refused if
        they no longer fit: the same feed added twice, a feed already removed). So an edit is
        reported done only when it is in the file."""
        try:
            with yamledit.file_lock(self.path):
                on_disk = read_text(self.path) if self.path.exists() else None
                if on_disk != self._on_disk:
                    self._rebase(on_disk)
                yamledit.atomic_write(self.path, self.text)
        except OSError as error:
            hint = "check that the folder exists and is writable"
            raise ConfigError(
                f"cannot write: {error.strerror}", path=str(self.path), hint=hint
            ) from None
        self._on_disk = self.text

    def _rebase(self, on_disk: str | None) -> None:
        """Take the file as it is now on disk, with this object's edits made again on it."""
        fresh = FeedsFile(self.path, on_disk or "", on_disk)
        for edit in self._edits:
            if isinstance(edit, str):
                fresh.remove(edit)
            else:
                fresh._queue(*edit)
        self._on_disk, self._text, self._doc = fresh._on_disk, fresh._text, fresh._doc
        self._config, self._queued, self._edits = fresh._config, fresh._queued, fresh._edits
        self._index = fresh._index

    def _new_feed(
        self,
        url: str,
        feed_id: str | None,
        title: str | None,
        tags: list[str],
        regions: list[str],
        interval: timedelta | str | None,
    ) -> Feed:
        url = _as_url(url)
        return Feed(
            id=derive_feed_id(url, self._index.ids) if feed_id is None else _as_id(feed_id),
            url=url,
            title=None if title is None else as_text("title", title),
            tags=_tags(tags),
            regions=_regions(regions),
            interval=DEFAULT_INTERVAL if interval is None else _as_interval(interval),
        )

    def _refuse_duplicate(self, new: Feed) -> None:
        if (feed := self._index.clash(new)) is not None:
            what = f"id {new.id!r}" if feed.id == new.id else f"url {new.url}"
            raise ConfigError(
                f"a feed with {what} is already in the file (id {feed.id!r})",
                path=str(self.path),
                hint="remove it first, or choose another id",
            )

    def _flush(self) -> None:
        if not self._queued:
            return
        entries = [entry for _, entry in self._queued]
        text = yamledit.append_items(self._text, self._doc, "feeds", entries)
        expected = self.feeds
        self._queued = []
        self._apply(text, expected, lambda doc: _append_to_tree(doc, entries))

    def _apply(
        self, text: str | None, expected: tuple[Feed, ...], edit: Callable[[Any], Any]
    ) -> None:
        """Keep the spliced `text` if it loads to exactly `expected`; otherwise make the edit
        on a fresh tree and dump it (comments kept, some maybe moved)."""
        if text is not None and self._adopt(text, expected):
            return
        tree = parse_yaml(self._text, self.path)
        edit(tree)
        if not self._adopt(yamledit.dump(tree, self._text), expected):
            raise ConfigError(
                "cannot make this edit without disturbing the rest of the file",
                path=str(self.path),
                hint="edit the file by hand",
            )

    def _adopt(self, text: str, expected: tuple[Feed, ...]) -> bool:
        try:
            doc, config = _load_text(text, self.path)
        except ConfigError:
            return False
        if config.feeds != expected or config.settings != self._config.settings:
            return False
        self._text, self._doc, self._config = text, doc, config
        self._index = FeedIndex(config.feeds + tuple(feed for feed, _ in self._queued))
        return True

"""The YAML `FeedsFile` writes for a feed it adds (`monitor feeds add`, `monitor feeds import`).

Its own module so that `feeds` reads as loading, checking and editing the file; this is only
the shape of one new entry: the url and id always, every other key only when it differs from
the default, and lists in flow style, as people write them.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from monitor.models import Feed
from monitor.yamlfile.check import format_duration

__all__ = ["append_to_tree", "new_entry"]


def flow(values: tuple[str, ...]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()  # `tags: [asia, wire]`, as people write them
    return seq


def new_entry(feed: Feed, *, with_interval: bool) -> CommentedMap:
    """The YAML of a new feed: the id always, the rest only when it is not the default."""
    entry = CommentedMap(url=feed.url, id=feed.id)
    if feed.title is not None:
        entry["title"] = feed.title
    if feed.tags:
        entry["tags"] = flow(feed.tags)
    if feed.regions:
        entry["regions"] = flow(feed.regions)
    if with_interval:
        entry["interval"] = format_duration(feed.interval)
    if not feed.enabled:
        entry["enabled"] = False
    if feed.username_env is not None and feed.password_env is not None:
        entry.update(username_env=feed.username_env, password_env=feed.password_env)
    return entry


def append_to_tree(doc: Any, entries: list[CommentedMap]) -> None:
    if isinstance(doc, CommentedMap) and isinstance(doc.get("feeds"), CommentedSeq):
        doc["feeds"].extend(entries)

"""`monitor items`: search stored items, and show one whole (why it matched, where it went)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

from monitor.cli import report
from monitor.cli.common import Paths, open_store, parse_since, parse_tz, pass_paths, tz_option
from monitor.errors import ConfigError, MonitorError

if TYPE_CHECKING:  # the rest is imported by the command that needs it (see cli.common)
    from monitor.match.rule import Hit
    from monitor.models import EntityTag, StoryRow
    from monitor.store import Store
    from monitor.store.details import ItemDetail

CONTEXT = 40  # characters shown on each side of a hit


@click.group()
def items() -> None:
    """Look at stored items."""


# Words starting with `-` are exclusions (`-film`), not options: unknown options are kept as
# words, so `monitor items search taiwan -film` works without a `--`.
@items.command("search", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1)
@click.option("--since", help="Only items published within this long, e.g. 2d or 12h.")
@click.option("--feed", "feed_id", help="Only items of this feed id.")
@click.option("--region", help="Only items tagged with this region code, e.g. TW or KP.")
@click.option("--rule", "rule_id", help="Only items this alert rule matched.")
@click.option("--entity", help="Only items naming this entity id, e.g. xi-jinping.")
@click.option("--story", type=int, help="Only the reports of this story id.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines for scripts.")
@tz_option
@pass_paths
def items_search(
    paths: Paths,
    words: tuple[str, ...],
    since: str | None,
    feed_id: str | None,
    region: str | None,
    rule_id: str | None,
    entity: str | None,
    story: int | None,
    limit: int,
    as_json: bool,
    tz_name: str,
) -> None:
    """Search stored items, newest first, in the query language of alert rules (words ANDed,
    "quoted phrases", OR, NOT or -word, prefix*, region:KP, entity:xi-jinping...; any
    language)."""
    tz = parse_tz(tz_name)
    mistyped = [w for w in words if w.startswith("--") and len(w) > 2]
    if mistyped:  # `--sinse 2d` must not quietly become a search for "sinse"
        raise click.UsageError(f"no such option: {mistyped[0]}")
    query = " ".join(words) or None
    with open_store(paths) as store:
        if story is not None:
            known_story(store, story)
        found = store.search(
            query,
            since=parse_since(since),
            feed_id=feed_id,
            region=region,
            rule_id=rule_id,
            limit=limit,
            tag_feeds=_tag_feeds(paths, query),
            entity=entity and entity.lower(),
            story=story,
        )
        rules = store.matched_rules([s.id for s in found])
        stories = store.item_stories(s.id for s in found)
    for stored in found:
        matched = rules.get(stored.id, [])
        if as_json:
            doc = report.item_json(stored, matched, tz, stories.get(stored.id))
            click.echo(json.dumps(doc, ensure_ascii=False))
        else:
            click.echo(report.item_lines(stored, matched, tz))
    if not found:
        from monitor.cli.hints import nothing_found, unknown_filters

        filters = {"region": region, "rule_id": rule_id, "entity": entity, "feed_id": feed_id}
        for line in nothing_found("items", unknown_filters(paths.rules, **filters), as_json):
            click.echo(line, err=True)


def known_story(store: Store, story: int) -> None:
    """Raise a one-line error for a story id that is not (or no longer) there."""
    if store.get_story(story) is not None:
        return
    into = store.merged_into(story)
    if into is not None:
        hint = f"use {into}: a merged story's reports are all there"
        raise MonitorError(f"story {story} was merged into story {into}", hint=hint)
    hint = "find story ids with `monitor stories`"
    raise MonitorError(f"no story with id {story} in {store.path}", hint=hint)


def _tag_feeds(paths: Paths, query: str | None) -> dict[str, list[str]] | None:
    """Tag -> feed ids from feeds.yaml, read only when the query has a `tag:` (tags live
    there, not in the database), so a search without one works whatever that file holds."""
    from monitor.match.nodes import Tag, walk
    from monitor.store.ftsquery import parse_search

    tree = parse_search(query)
    if tree is None or not any(isinstance(node, Tag) for node in walk(tree)):
        return None
    from monitor.ingest.feeds import load_feeds  # YAML: loaded only for a `tag:` search

    out: dict[str, list[str]] = {}
    for feed in load_feeds(paths.feeds).feeds:
        for tag in feed.tags:
            out.setdefault(tag, []).append(feed.id)
    return out


@items.command("show")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@tz_option
@pass_paths
def items_show(paths: Paths, item_id: int, as_json: bool, tz_name: str) -> None:
    """One item whole: its text, times, regions, the rules it matched and where (with the text
    around each hit), whether that was history, and the digests it went out in."""
    from monitor.store.details import item_detail

    tz = parse_tz(tz_name)
    with open_store(paths) as store:
        detail = item_detail(store, item_id)
        story_id = store.item_stories([item_id]).get(item_id)
        story = store.get_story(story_id) if story_id is not None else None
    if detail is None:
        hint = "find item ids with `monitor items search`"
        raise MonitorError(f"no item with id {item_id} in {paths.db}", hint=hint)
    feed_title = _feed_title(paths, detail.stored.item.feed_id)
    if as_json:
        doc = {**show_json(detail, feed_title, tz), "story": story_id}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        click.echo(show_text(detail, feed_title, tz))
        click.echo(story_line(story))


def story_line(story: StoryRow | None) -> str:
    if story is None:
        return "story: none (stored before stories were kept, or not linked yet)"
    reports = f"{story.reports} report" + ("s" if story.reports != 1 else "")
    outlets = f"{len(story.outlets)} outlet" + ("s" if len(story.outlets) != 1 else "")
    langs = ", ".join(story.languages) or "-"
    see = f"`monitor stories show {story.id}`"
    return f"story: {story.id} ({reports} from {outlets}, in {langs}): {see}"


def _feed_title(paths: Paths, feed_id: str) -> str | None:
    from monitor.ingest.feeds import load_feeds

    # A decoration only: a feed file being edited (or broken) must not hide a stored item.
    try:
        feeds = load_feeds(paths.feeds).feeds
    except ConfigError:
        return None
    return next((f.title for f in feeds if f.id == feed_id), None)


def context(text: str, hit: Hit, width: int = CONTEXT) -> str:
    """The hit in [brackets] with up to `width` characters on each side.

    Offsets are in the folded text; folding keeps lengths for nearly all news text, and where
    it does not (a ligature, `ß`) the folded text is shown, where the offsets are right.
    """
    from monitor.match.textnorm import fold

    folded = fold(text)
    source = text if len(folded) == len(text) else folded
    before = source[max(0, hit.start - width) : hit.start]
    after = source[hit.end : hit.end + width]
    head = "…" if hit.start > width else ""
    tail = "…" if hit.end + width < len(source) else ""
    return f"{head}{before}[{source[hit.start : hit.end]}]{after}{tail}"


def _time(when: datetime | None, tz: tzinfo | None) -> str | None:
    return when.astimezone(tz).isoformat() if when else None


def show_json(detail: ItemDetail, feed_title: str | None, tz: tzinfo | None) -> dict[str, Any]:
    stored, item = detail.stored, detail.stored.item
    fields = {"title": item.title, "summary": item.summary}
    return {
        **report.item_json(stored, sorted({m.rule_id for m in detail.matches}), tz),
        "feed_title": feed_title,
        "author": item.author,
        "updated": _time(stored.updated, tz),
        "matches": [
            {
                "rule": m.rule_id,
                "score": m.score,
                "matched_at": _time(m.matched_at, tz),
                "history": m.history,
                "hits": [
                    {
                        "term": h.term,
                        "field": h.field,
                        "start": h.start,
                        "end": h.end,
                        "context": context(fields[h.field], h),
                    }
                    for h in m.hits
                ],
            }
            for m in detail.matches
        ],
        "digests": [
            {
                "id": d.digest_id,
                "route": d.route_id,
                "receiver": d.receiver_id,
                "status": d.status,
                "created": _time(d.created, tz),
                "delivered": _time(d.delivered, tz),
            }
            for d in detail.digests
        ],
    }


def show_text(detail: ItemDetail, feed_title: str | None, tz: tzinfo | None) -> str:
    stored, item = detail.stored, detail.stored.item
    feed = f"{item.feed_id} ({feed_title})" if feed_title else item.feed_id

    def when(value: datetime | None) -> str:
        return report.stamp(value, tz) if value else "-"

    rows = [
        ("feed", feed),
        ("title", item.title),
        ("summary", item.summary or "-"),
        ("link", item.link or "-"),
        ("guid", item.guid),
        ("author", item.author or "-"),
        ("lang", item.lang or "-"),
        ("published", when(item.published)),
        ("first seen", when(item.first_seen)),
        ("edited", when(stored.updated)),
        ("regions", ", ".join(item.regions) or "-"),
        ("entities", _entities(item.entities)),
    ]
    lines = [f"item {stored.id}"] + [f"  {name + ':':12s}{value}" for name, value in rows]
    lines += _match_lines(detail, tz)
    lines += _digest_lines(detail, tz)
    return "\n".join(lines)


def _entities(tags: Sequence[EntityTag]) -> str:
    """`xi-jinping (person, title [0:2])`, one per mention, in text order."""
    return ", ".join(f"{t.id} ({t.kind}, {t.field} [{t.start}:{t.end}])" for t in tags) or "-"


def _match_lines(detail: ItemDetail, tz: tzinfo | None) -> Sequence[str]:
    if not detail.matches:
        return ["matches: none"]
    item = detail.stored.item
    fields = {"title": item.title, "summary": item.summary}
    lines = ["matches:"]
    for m in detail.matches:
        flag = "history (old news when first seen: never delivered)" if m.history else "alert"
        lines.append(
            f"  {m.rule_id}: score {m.score:g}, matched {report.stamp(m.matched_at, tz)}, {flag}"
        )
        for h in m.hits:
            lines.append(
                f"    {h.term} in {h.field} [{h.start}:{h.end}]: {context(fields[h.field], h)}"
            )
    return lines


def _digest_lines(detail: ItemDetail, tz: tzinfo | None) -> Sequence[str]:
    if not detail.digests:
        return ["digests: none"]
    lines = ["digests:"]
    for d in detail.digests:
        sent = f", delivered {report.stamp(d.delivered, tz)}" if d.delivered else ""
        lines.append(
            f"  {d.digest_id}: route {d.route_id} to {d.receiver_id}, {d.status} "
            f"(frozen {report.stamp(d.created, tz)}{sent})"
        )
    return lines

"""`monitor stories`: the stories the linker made at ingest, one development per story, and
the analyst's corrections (`split`, `merge`), which the linker never undoes.

Only click and light modules at the top (see cli.common): the store is imported by the
commands that open it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import click

from monitor.cli import report
from monitor.cli.common import (
    Paths,
    open_store,
    parse_since,
    parse_tz,
    pass_paths,
    tz_option,
    utcnow,
)
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.models import StoredItem, StoryRow
    from monitor.store import Store
    from monitor.store.stories import StoryLink

# Growth is told as reports published within these spans before now.
GROWTH = (("last_hour", timedelta(hours=1)), ("last_6h", timedelta(hours=6)))


@dataclass(frozen=True)
class StoryView:
    """A story with what the commands show beside its aggregates."""

    row: StoryRow
    headline: StoredItem | None
    rules: tuple[str, ...]
    growth: Mapping[str, int]


@click.group(invoke_without_command=True)
@click.option("--since", help="Only stories with a report published within this long, e.g. 2d.")
@click.option("--rule", "rule_id", help="Only stories with a report this alert rule matched.")
@click.option("--region", help="Only stories tagged with this region code, e.g. TW or KP.")
@click.option("--limit", default=20, show_default=True, help="At most this many stories.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines for scripts.")
@tz_option
@click.pass_context
def stories(
    ctx: click.Context,
    since: str | None,
    rule_id: str | None,
    region: str | None,
    limit: int,
    as_json: bool,
    tz_name: str,
) -> None:
    """Stories: the reports of one development across outlets and languages, latest first,
    with their outlets, languages, regions, entities and growth."""
    if ctx.invoked_subcommand is not None:
        return
    paths = ctx.find_object(Paths)
    assert paths is not None  # set by `main`
    tz = parse_tz(tz_name)
    with open_store(paths) as store:
        found = store.find_stories(parse_since(since), rule_id, region, limit)
        views = story_views(store, found, utcnow())
    for view in views:
        if as_json:
            click.echo(json.dumps(story_json(view, tz), ensure_ascii=False))
        else:
            click.echo(story_text(view, tz))
    if not views:
        from monitor.cli.hints import nothing_found, unknown_filters

        why = unknown_filters(paths.rules, region=region, rule_id=rule_id)
        for line in nothing_found("stories", why, as_json):
            click.echo(line, err=True)


def story_views(store: Store, rows: Sequence[StoryRow], now: datetime) -> list[StoryView]:
    """The headline item, rules and growth of each story, read in a few queries."""
    ids = [r.id for r in rows]
    heads = {s.id: s for s in store.get_items([r.headline_item for r in rows])}
    members = store.story_members(ids)
    matched = store.matched_rules([s.id for m in members.values() for s in m])
    growth = {name: store.recent_reports(ids, now - span) for name, span in GROWTH}
    return [
        StoryView(
            row=r,
            headline=heads.get(r.headline_item),
            rules=tuple(sorted({x for s in members.get(r.id, []) for x in matched.get(s.id, [])})),
            growth={name: counts.get(r.id, 0) for name, counts in growth.items()},
        )
        for r in rows
    ]


def story_json(view: StoryView, tz: tzinfo | None) -> dict[str, Any]:
    row, head = view.row, view.headline
    return {
        "id": row.id,
        "headline": None if head is None else _report_json(head, tz),
        "first_report": row.first_seen.astimezone(tz).isoformat(),
        "last_report": row.last_seen.astimezone(tz).isoformat(),
        "reports": row.reports,
        "outlets": list(row.outlets),
        "languages": list(row.languages),
        "regions": list(row.regions),
        "entities": list(row.entities),
        "rules": list(view.rules),
        "growth": dict(view.growth),
    }


def _report_json(stored: StoredItem, tz: tzinfo | None) -> dict[str, Any]:
    item = stored.item
    return {
        "item": stored.id,
        "feed": item.feed_id,
        "lang": item.lang,
        "title": item.title,
        "link": item.link,
        "published": item.published.astimezone(tz).isoformat(),
    }


def story_text(view: StoryView, tz: tzinfo | None) -> str:
    row = view.row
    title = view.headline.item.title if view.headline else "(headline gone)"
    growth = ", ".join(f"{view.growth[name]} {label}" for name, label in _GROWTH_LABELS)
    langs = ", ".join(row.languages) or "-"
    lines = [
        f"story {row.id}: {title}",
        f"  {_n(row.reports, 'report')} from {_n(len(row.outlets), 'outlet')}"
        f" ({', '.join(row.outlets)}) in {langs}",
        f"  first {report.stamp(row.first_seen, tz)}, last {report.stamp(row.last_seen, tz)};"
        f" new: {growth}",
        f"  regions: {', '.join(row.regions) or '-'}; entities: {', '.join(row.entities) or '-'}"
        + (f"; rules: {', '.join(view.rules)}" if view.rules else ""),
    ]
    return "\n".join(lines)


_GROWTH_LABELS = (("last_hour", "in the last hour"), ("last_6h", "in 6 h"))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- one story -----------------------------------------------------------------------------


@stories.command("show")
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@tz_option
@pass_paths
def stories_show(paths: Paths, story_id: int, as_json: bool, tz_name: str) -> None:
    """One story: its reports in the order they were published, with why each joined."""
    tz = parse_tz(tz_name)
    with open_store(paths) as store:
        row = store.get_story(story_id)
        into = store.merged_into(story_id) if row is None else None
        if row is None and into is None:
            raise unknown_story(store, story_id)
        view = story_views(store, [row], utcnow())[0] if row else None
        links = store.story_links(story_id) if row else []
    if view is None:  # merged: the id answers where its reports went
        if as_json:
            click.echo(json.dumps({"id": story_id, "merged_into": into}))
        else:
            click.echo(
                f"story {story_id} was merged into story {into}: see `monitor stories show {into}`"
            )
        return
    if as_json:
        doc = {**story_json(view, tz), "members": [link_json(x, tz) for x in links]}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(story_text(view, tz))
    click.echo("reports:")
    for link in links:
        click.echo(link_text(link, tz))


def unknown_story(store: Store, story_id: int) -> MonitorError:
    hint = "find story ids with `monitor stories`"
    return MonitorError(f"no story with id {story_id} in {store.path}", hint=hint)


def joined_because(link: StoryLink) -> str:
    """Why a report is where it is, in words."""
    why = "; ".join(link.why)
    if link.manual:
        return why or "moved by hand"
    if link.started:
        return "started the story" + (f" ({why})" if why else "")
    return f"joined, score {link.score:g}: {why or 'no reason recorded'}"


def link_json(link: StoryLink, tz: tzinfo | None) -> dict[str, Any]:
    return {
        **_report_json(link.stored, tz),
        "score": link.score,
        "why": list(link.why),
        "started": link.started,
        "manual": link.manual,
        "linked_at": link.linked_at.astimezone(tz).isoformat(),
    }


def link_text(link: StoryLink, tz: tzinfo | None) -> str:
    item = link.stored.item
    head = f"  [{link.stored.id}] {report.stamp(item.published, tz)}  {item.feed_id}"
    return f"{head} ({item.lang or '-'})  {item.title}\n      {joined_because(link)}"


# --- corrections ---------------------------------------------------------------------------


@stories.command("split")
@click.argument("item_id", type=int)
@pass_paths
def stories_split(paths: Paths, item_id: int) -> None:
    """Take a report out of its story into a story of its own (kept: the linker never
    moves it back)."""
    with open_store(paths) as store:
        if not store.get_items([item_id]):
            hint = "find item ids with `monitor items search` or `monitor stories show ID`"
            raise MonitorError(f"no item with id {item_id} in {paths.db}", hint=hint)
        try:
            old, new = store.split_item(item_id)
        except KeyError:
            hint = "it was stored before stories were kept, or the next poll links it"
            raise MonitorError(f"item {item_id} has no story", hint=hint) from None
        except ValueError as error:
            raise MonitorError(str(error), hint="nothing to split") from None
    click.echo(f"item {item_id} left story {old}: it is story {new} now, and stays apart")


@stories.command("merge")
@click.argument("into", type=int)
@click.argument("other", type=int)
@pass_paths
def stories_merge(paths: Paths, into: int, other: int) -> None:
    """Move every report of story OTHER into story INTO; OTHER's id then answers where
    they went."""
    if into == other:
        raise click.UsageError("give two different story ids")
    with open_store(paths) as store:
        for story in (into, other):
            if store.get_story(story) is None:
                raise _gone(store, story)
        moved = store.merge_stories(into, other)
        row = store.get_story(into)
    assert row is not None  # it was there inside the merge's transaction
    click.echo(
        f"story {other} merged into story {into}: {_n(moved, 'report')} moved;"
        f" story {into} has {_n(row.reports, 'report')} from {_n(len(row.outlets), 'outlet')}"
    )


def _gone(store: Store, story: int) -> MonitorError:
    into = store.merged_into(story)
    if into is None:
        return unknown_story(store, story)
    return MonitorError(
        f"story {story} was merged into story {into} already", hint=f"use story {into}"
    )

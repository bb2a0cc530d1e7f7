"""`monitor feeds ...`: the sources in feeds.yaml (add, check, list, remove, import, export).

Commands that edit the file keep its comments and order (see `ingest.feeds.FeedsFile`).
`add` and `check` look at the network through `ingest.discover`; `check` writes nothing at all,
not even the database.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor.cli import report
from monitor.cli.common import Paths, open_store, pass_paths, utcnow
from monitor.yamlfile.duration import format_duration

if TYPE_CHECKING:  # the rest is imported by the command that needs it (see cli.common)
    from monitor.ingest.discover import Found, Probe

STARTER = "starter.opml"  # in monitor/data/: the bundled list of public sources
STARTER_COMPILED = "2026-12-02"


@click.group()
def feeds() -> None:
    """Manage the sources in feeds.yaml (comments and order are kept)."""


@feeds.command("add")
@click.argument("url")
@click.option("--id", "feed_id", help="Feed id (default: derived from the URL).")
@click.option("--title", help="Default: the feed's own title.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable), usable as tag:NAME.")
@click.option("--interval", help="How often to poll, e.g. 10m or 1h (default 15m).")
@pass_paths
def feeds_add(
    paths: Paths,
    url: str,
    feed_id: str | None,
    title: str | None,
    tags: tuple[str, ...],
    interval: str | None,
) -> None:
    """Add a feed URL, or a web page's URL: the feed the page names is found and added."""
    import asyncio

    from monitor.ingest.discover import find_feed
    from monitor.ingest.feeds import FeedsFile

    # What can be refused without a request is refused first: the URL, the options, the same
    # URL or id already in the file. Only a trial: the page may name a feed at another URL.
    edit = FeedsFile.load(paths.feeds)
    edit.add(url, id=feed_id, title=title, tags=tags, interval=interval, dry_run=True)
    found = asyncio.run(find_feed(url, edit.config.settings))
    if found.url is None:
        _ask_to_choose(found, feed_id, title, tags, interval)
    if found.page is not None:
        click.echo(f"{found.page} names the {found.kind} feed {found.url}")
    feed = edit.add(found.url, id=feed_id, title=title or found.title, tags=tags, interval=interval)
    edit.save()
    named = f' "{feed.title}"' if feed.title else ""
    click.echo(f"added {feed.id}: {feed.url}{named} (every {format_duration(feed.interval)})")
    if found.warning:
        click.echo(
            f"monitor: warning: {found.warning}; `monitor feeds check {feed.id}` tries it again",
            err=True,
        )


def _ask_to_choose(
    found: Found, feed_id: str | None, title: str | None, tags: Sequence[str], interval: str | None
) -> NoReturn:
    """Several feeds on the page: print one `feeds add` command per feed, exit 1."""
    options = [("--id", feed_id), ("--title", title), ("--interval", interval)]
    words = [w for name, value in options if value for w in (name, value)]
    words += [w for tag in tags for w in ("--tag", tag)]
    extra = "".join(f" {shlex.quote(word)}" for word in words)
    click.echo(
        f"monitor: {found.page} names {len(found.choices)} feeds; "
        "add the one you want with its command:",
        err=True,
    )
    commands = [f"monitor feeds add {shlex.quote(choice.url)}{extra}" for choice in found.choices]
    width = max(len(command) for command in commands)
    for command, choice in zip(commands, found.choices, strict=True):
        about = f"{choice.kind}: {choice.title}" if choice.title else choice.kind
        click.echo(f"  {command.ljust(width)}  # {about}", err=True)
    click.get_current_context().exit(1)


@feeds.command("check")
@click.argument("feed_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="JSON lines for scripts.")
@pass_paths
def feeds_check(paths: Paths, feed_ids: tuple[str, ...], as_json: bool) -> None:
    """Fetch each feed once (every enabled feed, or the ids given) and show what is there.

    Stores nothing: no database writes, no state. Exits 1 when a feed does not work.
    """
    import asyncio

    from monitor.ingest.discover import probe_feeds
    from monitor.ingest.feeds import load_feeds
    from monitor.models import FetchStatus

    config = load_feeds(paths.feeds)
    unknown = sorted(set(feed_ids) - {f.id for f in config.feeds})
    if unknown:
        raise click.UsageError(f"no feed with id {', '.join(unknown)} in {paths.feeds}")
    chosen = [f for f in config.feeds if f.id in feed_ids or (not feed_ids and f.enabled)]
    if not chosen:
        click.echo(f"no enabled feeds in {paths.feeds}: name disabled ones by id", err=True)
        return
    probes = asyncio.run(probe_feeds(chosen, config.settings))
    if as_json:
        for found in probes:
            click.echo(json.dumps(check_json(found), ensure_ascii=False))
    else:
        click.echo(check_table(probes))
    if any(found.status is not FetchStatus.OK for found in probes):
        click.get_current_context().exit(1)


def check_json(found: Probe) -> dict[str, Any]:
    newest = found.newest.astimezone(UTC).isoformat() if found.newest else None
    return {
        "id": found.feed_id,
        "url": found.url,
        "status": str(found.status),
        "http_status": found.http_status,
        "format": found.format,
        "title": found.title,
        "items": found.items,
        "newest": newest,
        "problem": found.problem,
    }


def check_table(probes: Sequence[Probe]) -> str:
    from monitor.models import FetchStatus

    rows = [["ID", "STATUS", "FORMAT", "ITEMS", "NEWEST (UTC)", "PROBLEM"]]
    for found in probes:
        newest = found.newest.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if found.newest else "-"
        items = "-" if found.items is None else str(found.items)
        # The problem in full, never clipped: it is the line the user acts on.
        problem = " ".join((found.problem or "").split())
        rows.append([found.feed_id, str(found.status), found.format or "-", items, newest, problem])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    failed = sum(1 for found in probes if found.status is not FetchStatus.OK)
    lines.append(
        f"{len(probes)} feeds checked: {len(probes) - failed} working, {failed} not; nothing stored"
    )
    return "\n".join(lines)


@feeds.command("remove")
@click.argument("feed_id")
@pass_paths
def feeds_remove(paths: Paths, feed_id: str) -> None:
    """Remove a feed by id (its stored items are kept until retention removes them)."""
    from monitor.ingest.feeds import FeedsFile

    edit = FeedsFile.load(paths.feeds)
    feed = edit.remove(feed_id)
    edit.save()
    with open_store(paths) as store:
        store.forget_feed_state(feed.id)
    click.echo(f"removed {feed.id}: {feed.url}")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines for scripts.")
@pass_paths
def feeds_list(paths: Paths, as_json: bool) -> None:
    """List feeds with their health."""
    from monitor.ingest.feeds import load_feeds

    config = load_feeds(paths.feeds)
    with open_store(paths) as store:
        states = store.states()
    if as_json:
        for feed in config.feeds:
            click.echo(json.dumps(report.feed_json(feed, states.get(feed.id)), ensure_ascii=False))
        return
    click.echo(report.feeds_table(config.feeds, states, utcnow()))


@feeds.command("import")
@click.argument(
    "opml_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--starter",
    is_flag=True,
    help=f"The bundled list of public sources for the default rules (compiled {STARTER_COMPILED}).",
)
@pass_paths
def feeds_import(paths: Paths, opml_file: Path | None, starter: bool) -> None:
    """Import feeds from an OPML file, or the starter list (folders become tags)."""
    from importlib import resources

    from monitor.ingest.feeds import FeedsFile
    from monitor.ingest.opml import add_imported, import_opml

    if starter == (opml_file is not None):
        raise click.UsageError("give an OPML file or --starter (one of the two)")
    if opml_file is not None:
        data, source = opml_file.read_bytes(), str(opml_file)
    else:
        data = (resources.files("monitor") / "data" / STARTER).read_bytes()
        source = f"the starter list (compiled {STARTER_COMPILED})"
    edit = FeedsFile.load(paths.feeds)
    added, skipped = add_imported(edit, import_opml(data, source), source)
    edit.save()
    click.echo(f"imported {added} feeds from {source} ({skipped} already present)")


@feeds.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@pass_paths
def feeds_export(paths: Paths, output: Path | None) -> None:
    """Export feeds as OPML 2.0 (ids, intervals, enabled and regions in monitor: attributes)."""
    from monitor.ingest.feeds import load_feeds
    from monitor.ingest.opml import export_opml

    text = export_opml(load_feeds(paths.feeds).feeds, title="monitor feeds")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")

"""The `monitor` command line: a thin layer over the pipeline stages.

Every MonitorError is printed as one line (`monitor: <file:line or feed>: what (hint)`) and
exits 1; nothing here knows SQL, HTTP or YAML details.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from monitor.cli import report
from monitor.cli.common import Paths, open_store, parse_since, pass_paths
from monitor.cli.digest import digest
from monitor.cli.rules import rules
from monitor.errors import MonitorError
from monitor.ingest.feeds import FeedsFile, format_duration, load_feeds
from monitor.ingest.opml import export_opml, import_opml
from monitor.ingest.poll import poll_cycle, utcnow
from monitor.match.ruleset import load_ruleset
from monitor.models import PollOutcome
from monitor.service.logs import FORMATS, setup_logging
from monitor.store.outbox import Outbox


class MonitorGroup(click.Group):
    """Turns our errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as error:
            click.echo(f"monitor: {error}", err=True)
            ctx.exit(1)


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--rules",
    "rules_dir",
    envvar="MONITOR_RULES",
    default="rules",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the files you edit (feeds.yaml, alerts/, channels.yaml). Env: MONITOR_RULES.",
)
@click.option(
    "--db",
    "db_path",
    envvar="MONITOR_DB",
    default="state/monitor.db",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite database the service writes. Env: MONITOR_DB.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option(
    "--log-format",
    envvar="MONITOR_LOG_FORMAT",
    type=click.Choice(FORMATS),
    default="human",
    show_default=True,
    help="human: readable lines; json: one JSON object per line. Env: MONITOR_LOG_FORMAT.",
)
@click.version_option(package_name="monitor")
@click.pass_context
def main(
    ctx: click.Context, rules_dir: Path, db_path: Path, verbose: bool, log_format: str
) -> None:
    """monitor: news alerts for people who must not miss a development in a crisis."""
    # Secrets named in channels.yaml are redacted from every log line of every command.
    setup_logging(verbose=verbose, fmt=log_format, channels_file=rules_dir / "channels.yaml")
    ctx.obj = Paths(rules=rules_dir, db=db_path)


# --- run / poll / demo ---------------------------------------------------------------------


@main.command()
@click.option(
    "--tick", default=15.0, show_default=True, help="Seconds between checks for due feeds."
)
@click.option(
    "--health-host",
    envvar="MONITOR_HEALTH_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address of /healthz and /metrics (0.0.0.0 to let other hosts scrape them). "
    "Env: MONITOR_HEALTH_HOST.",
)
@click.option(
    "--health-port",
    envvar="MONITOR_HEALTH_PORT",
    default=8321,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of /healthz and /metrics; 0 picks a free one (logged). Env: MONITOR_HEALTH_PORT.",
)
@pass_paths
def run(paths: Paths, tick: float, health_host: str, health_port: int) -> None:
    """Run the service in the foreground until SIGTERM or Ctrl-C; SIGHUP reloads rules/.

    Serves GET /healthz and GET /metrics (Prometheus). One service per database: a second one
    refuses to start; other commands keep working beside it.
    """
    from monitor.service.service import ServiceOptions, run_service

    options = ServiceOptions(
        rules_dir=paths.rules,
        db_path=paths.db,
        tick=tick,
        health_host=health_host,
        health_port=health_port,
    )
    run_service(options)


@main.command()
@click.option("--force", is_flag=True, help="Also poll feeds that are backing off after errors.")
@click.option("--feed", "feed_ids", multiple=True, help="Poll only this feed id (repeatable).")
@pass_paths
def poll(paths: Paths, force: bool, feed_ids: tuple[str, ...]) -> None:
    """Run one poll cycle now, then print a summary."""
    config = load_feeds(paths.feeds)
    ruleset = load_ruleset(paths.rules)
    feeds = [f for f in config.feeds if not feed_ids or f.id in feed_ids]
    unknown = set(feed_ids) - {f.id for f in config.feeds}
    if unknown:
        raise click.UsageError(f"no feed with id {', '.join(sorted(unknown))} in {paths.feeds}")
    with open_store(paths) as store, progress(len(feeds)) as on_outcome:
        summary = asyncio.run(
            poll_cycle(
                feeds,
                store,
                config.settings,
                force=force or bool(feed_ids),
                ruleset=ruleset,
                on_outcome=on_outcome,
            )
        )
    click.echo(report.cycle(summary))


@contextmanager
def progress(total: int) -> Iterator[Callable[[PollOutcome], None]]:
    """A progress bar on a terminal for long cycles; silent otherwise."""
    if total < 20 or not sys.stderr.isatty():
        yield lambda _outcome: None
        return
    with click.progressbar(length=total, label="polling", file=sys.stderr) as bar:
        yield lambda _outcome: bar.update(1)


@main.command()
@click.option(
    "--dir", "out_dir", default="state", show_default=True, type=click.Path(path_type=Path)
)
@pass_paths
def demo(paths: Paths, out_dir: Path) -> None:
    """The whole pipeline offline on bundled sample feeds served on loopback."""
    from monitor.demo.demo import run_demo

    run_demo(out_dir, paths.rules, echo=click.echo)


# --- feeds ---------------------------------------------------------------------------------


@main.group()
def feeds() -> None:
    """Manage the sources in feeds.yaml (comments and order are kept)."""


@feeds.command("add")
@click.argument("url")
@click.option("--id", "feed_id", help="Feed id (default: derived from the URL).")
@click.option("--title")
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
    """Add a feed URL."""
    edit = FeedsFile.load(paths.feeds)
    feed = edit.add(url, id=feed_id, title=title, tags=tags, interval=interval)
    edit.save()
    click.echo(f"added {feed.id}: {feed.url} (every {format_duration(feed.interval)})")


@feeds.command("remove")
@click.argument("feed_id")
@pass_paths
def feeds_remove(paths: Paths, feed_id: str) -> None:
    """Remove a feed by id (its stored items are kept until retention removes them)."""
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
    config = load_feeds(paths.feeds)
    with open_store(paths) as store:
        states = store.states()
    if as_json:
        for feed in config.feeds:
            click.echo(json.dumps(report.feed_json(feed, states.get(feed.id)), ensure_ascii=False))
        return
    click.echo(report.feeds_table(config.feeds, states, utcnow()))


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_paths
def feeds_import(paths: Paths, opml_file: Path) -> None:
    """Import feeds from an OPML file (folders become tags)."""
    edit = FeedsFile.load(paths.feeds)
    added, skipped = 0, 0
    for entry in import_opml(opml_file.read_bytes(), str(opml_file)):
        if edit.has_url(entry.url):
            skipped += 1
            continue
        edit.add(entry.url, title=entry.title, tags=entry.tags)
        added += 1
    edit.save()
    click.echo(f"imported {added} feeds from {opml_file} ({skipped} already present)")


@feeds.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@pass_paths
def feeds_export(paths: Paths, output: Path | None) -> None:
    """Export feeds as OPML 2.0."""
    text = export_opml(load_feeds(paths.feeds).feeds, title="monitor feeds")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


# --- status / items ------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@pass_paths
def status(paths: Paths, as_json: bool) -> None:
    """Feeds' health at a glance: last poll, errors, next poll, items stored."""
    config = load_feeds(paths.feeds)
    with open_store(paths) as store:
        states = store.states()
        total = store.count_items()
        outbox = Outbox(store)
        deliveries = report.Deliveries(
            counts=outbox.counts(),
            troubled=outbox.recent(("retrying", "dead")),
            disabled=outbox.disabled(),
        )
    if as_json:
        doc = {
            "items": total,
            "feeds": [report.feed_json(f, states.get(f.id)) for f in config.feeds],
            "deliveries": report.deliveries_json(deliveries),
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(report.status(config.feeds, states, total, utcnow()))
    click.echo("\n" + report.deliveries(deliveries, utcnow()))


@main.group()
def items() -> None:
    """Look at stored items."""


@items.command("search")
@click.argument("query", required=False)
@click.option("--since", help="Only items published within this long, e.g. 2d or 12h.")
@click.option("--feed", "feed_id", help="Only items of this feed id.")
@click.option("--region", help="Only items tagged with this region code, e.g. TW or KP.")
@click.option("--rule", "rule_id", help="Only items this alert rule matched.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines for scripts.")
@pass_paths
def items_search(
    paths: Paths,
    query: str | None,
    since: str | None,
    feed_id: str | None,
    region: str | None,
    rule_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Full-text search of stored items (words ANDed, "quoted phrases"; any language)."""
    with open_store(paths) as store:
        found = store.search(
            query,
            since=parse_since(since),
            feed_id=feed_id,
            region=region,
            rule_id=rule_id,
            limit=limit,
        )
        rules = store.matched_rules([s.id for s in found])
    for stored in found:
        matched = rules.get(stored.id, [])
        if as_json:
            click.echo(json.dumps(report.item_json(stored, matched), ensure_ascii=False))
        else:
            click.echo(report.item_lines(stored, matched))
    if not as_json and not found:
        click.echo("no items found", err=True)


main.add_command(rules)
main.add_command(digest)

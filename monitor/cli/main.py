"""The `monitor` command line: a thin layer over the pipeline stages.

Every MonitorError is printed as one line (`monitor: <file:line or feed>: what (hint)`) and
exits 1; nothing here knows SQL, HTTP or YAML details.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Command modules are imported whole to list them in `monitor --help`: each one imports only
# click and light modules at its top, and the database, network, YAML and matching modules
# inside the commands that use them (tests/cli/test_startup.py fails when `--help` loads one
# of those). A new command group: its own module under cli/ written that way, imported here,
# and one `main.add_command(...)` line at the bottom.
from monitor.cli import report
from monitor.cli.common import DB_LOCATION, Paths, open_store, pass_paths, utcnow
from monitor.cli.digest import digest
from monitor.cli.feeds import feeds
from monitor.cli.items import items
from monitor.cli.rules import rules
from monitor.cli.run import route_schedules, run, schedule_lines, schedules_json, with_env_file
from monitor.cli.stories import stories
from monitor.cli.web import web
from monitor.errors import MonitorError
from monitor.service.logs import FORMATS, REDACTOR, setup_logging
from monitor.store.location import DbLocation, url_secrets

if TYPE_CHECKING:
    from monitor.models import PollOutcome


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
    "db",
    envvar="MONITOR_DB",
    default="state/monitor.db",
    show_default=True,
    type=DB_LOCATION,
    help="The database: a SQLite file, or a postgresql://user@host/name URL (password from "
    "PGPASSWORD or ~/.pgpass, not the URL). Env: MONITOR_DB.",
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
    ctx: click.Context, rules_dir: Path, db: DbLocation, verbose: bool, log_format: str
) -> None:
    """monitor: news alerts for people who must not miss a development in a crisis."""
    if ctx.invoked_subcommand == "run" and not ctx.resilient_parsing:  # .env may set options
        given = {"rules_dir": rules_dir, "db": db, "log_format": log_format}
        got = with_env_file(ctx, given)
        rules_dir, db, log_format = got["rules_dir"], got["db"], got["log_format"]
    # Secrets named in channels.yaml are redacted from every log line of every command.
    setup_logging(verbose=verbose, fmt=log_format, channels_file=rules_dir / "channels.yaml")
    # And the database's password (in its URL, or PGPASSWORD), should a message quote it.
    if db.is_postgres:
        password = [*url_secrets(str(db.target)), os.environ.get("PGPASSWORD", "")]
        REDACTOR.update([*REDACTOR.secrets, *password])
    ctx.obj = Paths(rules=rules_dir, db=db)


# --- run (in cli/run.py) / poll / demo ------------------------------------------------------


@main.command()
@click.option("--force", is_flag=True, help="Also poll feeds that are backing off after errors.")
@click.option("--feed", "feed_ids", multiple=True, help="Poll only this feed id (repeatable).")
@pass_paths
def poll(paths: Paths, force: bool, feed_ids: tuple[str, ...]) -> None:
    """Run one poll cycle now, then print a summary."""
    import asyncio

    from monitor.ingest.feeds import load_feeds
    from monitor.ingest.forking import start_early

    config = load_feeds(paths.feeds)
    feeds = [f for f in config.feeds if not feed_ids or f.id in feed_ids]
    unknown = set(feed_ids) - {f.id for f in config.feeds}
    if unknown:
        raise click.UsageError(f"no feed with id {', '.join(sorted(unknown))} in {paths.feeds}")
    # The workers' fork server loads their modules (~0.5 s) on the other core while this
    # process loads its own, the rules and the feeds' states, not after them.
    start_early(sum(f.enabled for f in feeds))

    from monitor.ingest.poll import poll_cycle
    from monitor.match.ruleset import load_ruleset

    ruleset = load_ruleset(paths.rules)
    with open_store(paths) as store, progress(len(feeds)) as on_outcome:
        summary = asyncio.run(
            poll_cycle(
                feeds,
                store,
                config.settings,
                force=True,  # every enabled feed now, whatever its interval
                ignore_backoff=force,
                ruleset=ruleset,
                on_outcome=on_outcome,
            )
        )
        schedules = store.schedules()  # which feeds are gone
    click.echo(report.cycle(summary, utcnow()))
    for line in report.not_polled(feeds, summary, schedules):
        click.echo(line)
    if summary.all_failed:
        sys.exit(1)  # nothing could be polled: a cron job or script must notice


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


# --- status / items ------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@pass_paths
def status(paths: Paths, as_json: bool) -> None:
    """Feeds' health at a glance: last poll, errors, next poll, items stored."""
    from monitor.cli.surges import surge_lines, surge_status, surges_json
    from monitor.ingest.feeds import load_feeds
    from monitor.store.cluster import Instances
    from monitor.store.details import match_totals
    from monitor.store.outbox import Outbox
    from monitor.store.routes import RouteHealth

    config = load_feeds(paths.feeds)
    with open_store(paths) as store:
        states = store.states()
        total = store.count_items()
        matches = match_totals(store)
        outbox = Outbox(store)
        deliveries = report.Deliveries(
            counts=outbox.counts(),
            troubled=outbox.recent(("retrying", "dead")),
            disabled=outbox.disabled(),
            routes=RouteHealth(store).troubled(),
        )
        surges = surge_status(store)
        live = Instances(store).live(utcnow())
    schedules, routes_problem = route_schedules(paths, utcnow())
    if as_json:
        doc = {
            "items": total,
            "matches": matches[0],
            "history": matches[1],
            "feeds": [report.feed_json(f, states.get(f.id)) for f in config.feeds],
            "deliveries": report.deliveries_json(deliveries),
            "routes": schedules_json(schedules),
            "surges": surges_json(surges),
            "instances": report.instances_json(live),
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(report.status(config.feeds, states, total, utcnow(), matches))
    click.echo("\n" + report.deliveries(deliveries, utcnow()))
    click.echo("\n" + surge_lines(surges, utcnow()))
    click.echo("\n" + schedule_lines(schedules, routes_problem))
    click.echo("\n" + report.instances(live, utcnow()))


main.add_command(run)
main.add_command(feeds)
main.add_command(items)
main.add_command(rules)
main.add_command(digest)
main.add_command(stories)
main.add_command(web)

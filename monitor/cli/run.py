"""`monitor run`, the `.env` file it reads, and the routes' schedule `monitor status` shows.

`.env` is read before anything else of `monitor run` happens (logging included), so the
global options it may set (`MONITOR_LOG_FORMAT`, `MONITOR_DB`, `MONITOR_RULES`) count as if
they had been in the environment all along; an option on the command line still wins, and so
does a variable already set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from monitor.cli.common import Paths, pass_paths
from monitor.errors import ConfigError, MonitorError
from monitor.service.envfile import load_env_file

if TYPE_CHECKING:
    from monitor.models import Route

ENV_FILE = Path(".env")
IMMEDIATE = "after each poll"


@click.command()
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

    Reads ./.env first when there is one (variables already set win). Serves GET /healthz and
    GET /metrics (Prometheus). One service per SQLite database: a second one refuses to
    start; other commands keep working beside it. On PostgreSQL, as many as you like.
    """
    from monitor.service.service import ServiceOptions, run_service

    options = ServiceOptions(
        rules_dir=paths.rules,
        db=paths.db,
        tick=tick,
        health_host=health_host,
        health_port=health_port,
    )
    run_service(options)


def with_env_file(ctx: click.Context, values: dict[str, Any]) -> dict[str, Any]:
    """Read `.env` (never overriding what is set), then re-resolve the global options in
    `values` that were left at their defaults, so an env var from the file reaches them."""
    load_env_file(ENV_FILE)
    resolved = dict(values)
    for param in ctx.command.params:
        name = param.name
        if name not in values or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            continue
        text = param.resolve_envvar_value(ctx)
        if text is None:
            continue
        try:
            resolved[name] = param.type_cast_value(ctx, text)
        except click.BadParameter as error:
            raise ConfigError(
                f"{param.envvar}: {error.format_message()}", path=str(ENV_FILE)
            ) from error
    return resolved


# --- what `monitor status` shows about the routes --------------------------------------------


@dataclass(frozen=True)
class RouteSchedule:
    route: Route
    next_send: datetime | None  # None: immediate (or a schedule that never fires again)


def route_schedules(paths: Paths, now: datetime) -> tuple[Sequence[RouteSchedule], str | None]:
    """Each route with its next scheduled send, or why they cannot be read (the rest of
    `monitor status` still works with a broken channels file)."""
    from monitor.digest.channels import load_channels
    from monitor.match.ruleset import load_ruleset

    try:
        ruleset = load_ruleset(paths.rules)
        channels = load_channels(
            paths.rules / "channels.yaml",
            {r.id for r in ruleset.rules},
            ruleset.gazetteer.codes,
        )
    except MonitorError as error:
        return [], str(error)
    return [RouteSchedule(route, next_send(route, now)) for route in channels.routes], None


def next_send(route: Route, now: datetime) -> datetime | None:
    """A cron route's next fire time, in its own time zone; None for an immediate route."""
    from monitor.digest.cron import schedule_trigger

    trigger = schedule_trigger(route)
    if trigger is None:
        return None
    when: datetime | None = trigger.get_next_fire_time(None, now)
    return when


def schedule_text(schedule: RouteSchedule) -> str:
    if schedule.route.schedule == "immediate":
        return IMMEDIATE
    if schedule.next_send is None:
        return "never (the schedule has no date left)"
    return schedule.next_send.isoformat(timespec="minutes")


def schedule_lines(schedules: Sequence[RouteSchedule], problem: str | None) -> str:
    """`routes:` and one line per route: id, receiver, next send (or the problem)."""
    if problem is not None:
        return f"routes: cannot read them: {problem}"
    if not schedules:
        return "routes: none (add receivers and routes to rules/channels.yaml)"
    lines = ["routes:"]
    for s in schedules:
        zone = "" if s.route.schedule == "immediate" else f" {s.route.timezone}"
        lines.append(f"  {s.route.id} to {s.route.receiver}: next send {schedule_text(s)}{zone}")
    return "\n".join(lines)


def schedules_json(schedules: Sequence[RouteSchedule]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.route.id,
            "receiver": s.route.receiver,
            "schedule": s.route.schedule,
            "timezone": s.route.timezone,
            "next_send": schedule_text(s),
        }
        for s in schedules
    ]

"""`monitor web`: the console alone, on a database (beside a running service, or on a copy)."""

from __future__ import annotations

import click

from monitor.cli.common import Paths, pass_paths


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Beyond loopback MONITOR_WEB_TOKEN is required.",
)
@click.option(
    "--port",
    default=8322,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (printed).",
)
@pass_paths
def web(paths: Paths, host: str, port: int) -> None:
    """Serve the web console (stories, search, rules playground, feeds, deliveries) until
    Ctrl-C or SIGTERM. It reads the database and rules/; it never writes rule files."""
    from monitor.web.serve import serve_console

    serve_console(paths.db, paths.rules, host, port, echo=click.echo)

"""`monitor digest preview/send/retry`: look at, send, and re-queue digests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.common import Paths, open_store, pass_paths
from monitor.digest.channels import Channels, load_channels
from monitor.digest.dispatch import collect, freeze_route, render, send_due
from monitor.digest.render.email import email_part
from monitor.errors import MonitorError
from monitor.ingest.feeds import load_feeds
from monitor.match.rule import Rule
from monitor.match.ruleset import load_ruleset
from monitor.models import Feed, Rendered, Route
from monitor.store.outbox import Outbox


@click.group()
def digest() -> None:
    """Digests of matched items for the routes in rules/channels.yaml."""


def load_all(paths: Paths) -> tuple[Channels, dict[str, Rule], dict[str, Feed]]:
    ruleset = load_ruleset(paths.rules)
    rules = {r.id: r for r in ruleset.rules}
    channels = load_channels(paths.rules / "channels.yaml", rules, ruleset.gazetteer.codes)
    feeds = {f.id: f for f in load_feeds(paths.feeds).feeds}
    return channels, rules, feeds


def pick_routes(channels: Channels, route_id: str | None) -> Sequence[Route]:
    if not channels.routes:
        raise MonitorError(
            "no routes in channels.yaml", hint="add a receiver and a route: see the README"
        )
    if route_id is None:
        return channels.routes
    chosen = [r for r in channels.routes if r.id == route_id]
    if not chosen:
        known = ", ".join(r.id for r in channels.routes)
        raise click.UsageError(f"no route {route_id!r} (routes: {known})")
    return chosen


def text_part(rendered: Rendered) -> str:
    """What a reader sees: the plain-text part of an email, or the webhook body."""
    if rendered.kind != "email":
        return rendered.body.decode("utf-8")
    return email_part(rendered.body, "plain") or ""


def html_part(rendered: Rendered) -> str | None:
    return email_part(rendered.body, "html") if rendered.kind == "email" else None


@digest.command("preview")
@click.option("--route", "route_id", help="Only this route id (default: every route).")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the HTML part of the (first) email digest to this file.",
)
@pass_paths
def digest_preview(paths: Paths, route_id: str | None, html_file: Path | None) -> None:
    """Show what each route would send now, without sending or marking anything."""
    channels, rules, feeds = load_all(paths)
    now = datetime.now(UTC)
    wrote_html = False
    with open_store(paths) as store:
        for route in pick_routes(channels, route_id):
            receiver = channels.receivers[route.receiver]
            collected = collect(store, route, receiver, rules, feeds, now)
            if collected is None:
                click.echo(f"== route {route.id} -> {receiver.id}: nothing pending\n")
                continue
            rendered = render(collected.digest)
            click.echo(f"== route {route.id} -> {receiver.id}: {rendered.subject}\n")
            click.echo(text_part(rendered))
            html = html_part(rendered)
            if html_file is not None and html is not None and not wrote_html:
                html_file.write_text(html, encoding="utf-8")
                click.echo(f"(HTML written to {html_file})", err=True)
                wrote_html = True


@digest.command("send")
@click.option("--route", "route_id", help="Only this route id (default: every route).")
@pass_paths
def digest_send(paths: Paths, route_id: str | None) -> None:
    """Build the pending digests now and send every due digest."""
    channels, rules, feeds = load_all(paths)
    now = datetime.now(UTC)
    with open_store(paths) as store:
        for route in pick_routes(channels, route_id):
            frozen = freeze_route(store, route, channels, rules, feeds, now)
            if frozen is None:
                click.echo(f"route {route.id}: nothing pending")
        results = asyncio.run(send_due(store, channels, os.environ))
    failed = 0
    for frozen, result in results:
        state = "delivered" if result.ok else f"failed: {result.error}"
        click.echo(f"digest {frozen.id} ({frozen.shown} items) to {frozen.receiver_id}: {state}")
        failed += not result.ok
    if failed:
        raise MonitorError(f"{failed} digests failed", hint="see `monitor status`")


@digest.command("retry")
@click.argument("digest_id")
@pass_paths
def digest_retry(paths: Paths, digest_id: str) -> None:
    """Re-queue a dead digest (it is sent again, byte-identical, at the next send)."""
    with open_store(paths) as store:
        if not Outbox(store).requeue(digest_id):
            raise MonitorError(
                f"no dead digest {digest_id!r}", hint="`monitor status` lists dead digests"
            )
    click.echo(f"digest {digest_id} re-queued")


@digest.command("enable")
@click.argument("receiver_id")
@pass_paths
def digest_enable(paths: Paths, receiver_id: str) -> None:
    """Re-enable a receiver disabled after its webhook answered 410 Gone."""
    with open_store(paths) as store:
        if not Outbox(store).enable_receiver(receiver_id):
            raise MonitorError(f"receiver {receiver_id!r} is not disabled")
    click.echo(f"receiver {receiver_id} enabled")

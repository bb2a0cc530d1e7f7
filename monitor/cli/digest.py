"""`monitor digest preview/send/show/retry/enable`: look at, send, and re-send digests."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli import report
from monitor.cli.common import Paths, open_store, pass_paths
from monitor.errors import MonitorError

if TYPE_CHECKING:  # the rest is imported by the command that needs it (see cli.common)
    from monitor.digest.channels import Channels
    from monitor.match.rule import Rule
    from monitor.models import Feed, Rendered, Route
    from monitor.store import Store
    from monitor.store.outbox import FrozenDigest

log = logging.getLogger("monitor.cli")


@click.group()
def digest() -> None:
    """Digests of matched items for the routes in rules/channels.yaml."""


def load_all(paths: Paths) -> tuple[Channels, dict[str, Rule], dict[str, Feed]]:
    from monitor.digest.channels import load_channels
    from monitor.ingest.feeds import load_feeds
    from monitor.match.ruleset import load_ruleset

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
    from monitor.digest.render.email import email_part

    if rendered.kind != "email":
        return rendered.body.decode("utf-8")
    return email_part(rendered.body, "plain") or ""


def html_part(rendered: Rendered) -> str | None:
    from monitor.digest.render.email import email_part

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
    from monitor.digest.collect import collect
    from monitor.digest.dispatch import render

    channels, rules, feeds = load_all(paths)
    now = datetime.now(UTC)
    wrote_html = False
    with open_store(paths) as store:
        for route in pick_routes(channels, route_id):
            receiver = channels.receivers[route.receiver]
            try:
                collected = collect(store, route, receiver, rules, feeds, now)
                rendered = render(collected.digest, channels.web_url) if collected else None
            except Exception as error:  # one broken route must not hide the others
                log.error("route %s: cannot build its digest", route.id, exc_info=error)
                click.echo(f"== route {route.id} -> {receiver.id}: cannot build: {error}\n")
                continue
            if rendered is None:
                click.echo(f"== route {route.id} -> {receiver.id}: nothing pending\n")
                continue
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
    import asyncio

    from monitor.digest.dispatch import freeze_routes, send_due
    from monitor.store.routes import RouteHealth

    channels, rules, feeds = load_all(paths)
    now = datetime.now(UTC)
    with open_store(paths) as store:
        routes = pick_routes(channels, route_id)
        built = {d.route_id for d in freeze_routes(store, routes, channels, rules, feeds, now)}
        troubled = {t.route_id: t for t in RouteHealth(store).troubled()}
        for route in routes:
            if route.id in troubled:
                click.echo(f"route {route.id}: {troubled[route.id].last_error}")
            elif route.id not in built:
                click.echo(f"route {route.id}: nothing pending")
        results = asyncio.run(send_due(store, channels, os.environ))
    failed = 0
    for frozen, result in results:
        state = "delivered" if result.ok else f"failed: {result.error}"
        click.echo(f"digest {frozen.id} ({frozen.shown} items) to {frozen.receiver_id}: {state}")
        failed += not result.ok
    if failed:
        raise MonitorError(f"{failed} digests failed", hint="see `monitor status`")


@digest.command("show")
@click.argument("digest_id")
@click.option("--raw", is_flag=True, help="Write the exact stored bytes (what is sent).")
@click.option("--left-out", is_flag=True, help="List the matches it left for the next digest.")
@pass_paths
def digest_show(paths: Paths, digest_id: str, raw: bool, left_out: bool) -> None:
    """Print a frozen digest: an email's headers and text, or a webhook's JSON body."""
    from monitor.store.outbox import Outbox

    with open_store(paths) as store:
        frozen = Outbox(store).get(digest_id)
        if frozen is None:
            raise MonitorError(
                f"no digest {digest_id!r}", hint="`monitor status` names failing digests"
            )
        if left_out:
            _print_left_out(store, frozen)
            return
    if raw:
        sys.stdout.buffer.write(frozen.body)
        sys.stdout.buffer.flush()
        return
    click.echo(_status_line(frozen))
    click.echo(_readable(frozen))


def _status_line(frozen: FrozenDigest) -> str:
    line = f"# digest {frozen.id}: route {frozen.route_id} -> {frozen.receiver_id}, "
    line += f"{frozen.status}, {frozen.attempts} attempts"
    return line + (f"; last error: {frozen.last_error}" if frozen.last_error else "")


def _readable(frozen: FrozenDigest) -> str:
    """An email's headers and plain-text part, or a webhook's body, indented if JSON."""
    import email
    import email.policy

    from monitor.digest.render.email import email_part

    if frozen.kind != "email":
        try:
            return json.dumps(json.loads(frozen.body), ensure_ascii=False, indent=2)
        except ValueError:
            return frozen.body.decode("utf-8", "replace")
    message = email.message_from_bytes(frozen.body, policy=email.policy.default)
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    return f"{headers}\n\n{email_part(frozen.body, 'plain') or ''}"


def _print_left_out(store: Store, frozen: FrozenDigest) -> None:
    from monitor.store.outbox import Outbox

    ids = Outbox(store).left_out(frozen.id)
    if not ids:
        click.echo(f"digest {frozen.id} left nothing out", err=True)
        return
    found = store.get_items(ids)
    rules = store.matched_rules(ids)
    for stored in found:
        click.echo(report.item_lines(stored, rules.get(stored.id, [])))
    if len(found) < len(ids):
        gone = len(ids) - len(found)
        click.echo(f"({gone} of them were removed since, by retention)", err=True)


@digest.command("retry")
@click.argument("digest_id")
@pass_paths
def digest_retry(paths: Paths, digest_id: str) -> None:
    """Send a dead or retrying digest again now, byte-identical."""
    import asyncio

    from monitor.digest.channels import load_channels
    from monitor.digest.dispatch import send_now
    from monitor.store.outbox import Outbox

    channels = load_channels(paths.rules / "channels.yaml")
    now = datetime.now(UTC)
    with open_store(paths) as store:
        done = asyncio.run(send_now(store, channels, os.environ, digest_id, now))
        frozen = Outbox(store).get(digest_id)
    if done is None:
        raise MonitorError(
            f"digest {digest_id!r} {_why_not(frozen, now)}",
            hint="`monitor status` lists dead and retrying digests",
        )
    _, result = done
    if not result.ok:
        after = f"{frozen.status}" if frozen else "failed"
        raise MonitorError(f"digest {digest_id} failed again ({after}): {result.error}")
    click.echo(f"digest {digest_id} delivered to {done[0].receiver_id}")


def _why_not(frozen: FrozenDigest | None, now: datetime) -> str:
    if frozen is None:
        return "does not exist"
    if frozen.leased_until and frozen.leased_until > now:
        return "is being sent by another monitor process right now"
    if frozen.status == "pending":
        return "is pending: the next `monitor digest send` (or the service) sends it"
    return f"is {frozen.status}: only a dead or retrying digest is sent again"


@digest.command("enable")
@click.argument("receiver_id")
@pass_paths
def digest_enable(paths: Paths, receiver_id: str) -> None:
    """Re-enable a receiver disabled after its webhook answered 410 Gone."""
    from monitor.store.outbox import Outbox

    with open_store(paths) as store:
        if not Outbox(store).enable_receiver(receiver_id):
            raise MonitorError(_not_disabled(paths, receiver_id))
    click.echo(f"receiver {receiver_id} enabled")


def _not_disabled(paths: Paths, receiver_id: str) -> str:
    """Why `digest enable` had nothing to do: the receiver is not disabled, or (a typo) there
    is no receiver of that id in channels.yaml."""
    from monitor.digest.channels import load_channels

    path = paths.rules / "channels.yaml"
    try:
        known = sorted(load_channels(path).receivers)
    except MonitorError:
        known = []  # a broken file: what the store says is all there is to say
    if known and receiver_id not in known:
        return f"no receiver {receiver_id!r} in {path} (receivers: {', '.join(known)})"
    return f"receiver {receiver_id!r} is not disabled"

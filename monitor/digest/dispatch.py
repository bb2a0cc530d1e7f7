"""From stored matches to receivers: collect, freeze, send, record.

The order is what keeps the promises (never lost, never doubled, resent byte-identical):

1. `freeze_route` collects the route's pending matches (`collect`), builds the digest,
   renders it to bytes and stores bytes + the items it claims in ONE transaction. Nothing is
   sent before that commit. The `deliveries` table refuses a second digest claiming an item
   for the same route, so two processes cannot both freeze it. Items over `max_items` are
   not claimed: they go out in the route's next digest.
2. `send_due` leases each due digest (so the service and a CLI command never send one at
   once), sends the stored bytes, and only then records `delivered`. A crash between send and
   record leaves the digest due again when the lease runs out: at most one resend, with the
   same bytes and id (Message-ID and `webhook-id` derive from it), never a loss.
3. A failure is retried with exponential backoff and jitter (honouring `Retry-After`) until
   the digest is `give_up_after` old, then it is dead with its reason; permanent failures (a
   4xx other than 408/429, a rejected address) go dead at once; a webhook answering 410
   disables its receiver.

Several instances on one database: a cron route's period (the fire time it follows,
`cron_period`) is claimed before its digest is frozen (`claim_periods`), so when the
schedulers of two instances fire for the same period only the first freezes and sends.

A failure is contained to its route and digest: `freeze_routes` records an unexpected error
building one route's digest against that route (`monitor status` shows it, the service tries
again after a backoff) and goes on with the others; `send_due` records an unexpected error
sending one digest as a failed attempt of that digest, to be retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.backoff import retry_delay
from monitor.deliver import SendResult, send_email, send_webhook
from monitor.deliver.result import one_line
from monitor.digest.channels import Channels
from monitor.digest.collect import collect
from monitor.digest.cron import schedule_trigger
from monitor.digest.render.email import render_email
from monitor.digest.render.webhook import render_webhook
from monitor.match.rule import Rule
from monitor.models import Digest, Feed, Rendered, Route
from monitor.store import Store
from monitor.store.cluster import claim_period
from monitor.store.outbox import FrozenDigest, Outbox
from monitor.store.routes import RouteHealth

log = logging.getLogger("monitor.dispatch")

DEFAULT_GIVE_UP = Route.give_up_after  # for digests whose route was removed since
LEASE = timedelta(minutes=5)  # how long a send may take before the digest is due again
FIRST_RETRY = timedelta(minutes=1)


def render(digest: Digest, web_url: str | None = None) -> Rendered:
    """Frozen bytes for the digest's receiver (the digest's own time, so bytes are stable);
    with `web_url` (channels.yaml) each story links to its page in the console."""
    if web_url is not None:
        digest = replace(digest, web_url=web_url)
    if digest.receiver.email is not None:
        return render_email(digest, digest.created)
    return render_webhook(digest, digest.created)


def freeze_route(
    store: Store,
    route: Route,
    channels: Channels,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> FrozenDigest | None:
    """Collect, render and store the route's digest; None when there was nothing to send."""
    receiver = channels.receivers[route.receiver]
    for _attempt in range(3):  # another process may claim items between collect and freeze
        collected = collect(store, route, receiver, rules, feeds, now, cover=True)
        if collected is None:
            return None
        rendered = render(collected.digest, channels.web_url)
        outbox = Outbox(store)
        if outbox.freeze(rendered, route.id, receiver.id, collected.claims, now):
            claims = collected.claims
            log.info(
                "digest %s frozen for route %s: %d items, %d referred to, %d left for the next",
                rendered.digest_id, route.id,
                len(claims.listed), len(claims.referred), len(claims.left_out),
                extra={"digest": rendered.digest_id, "receiver": receiver.id},
            )  # fmt: skip
            return outbox.get(rendered.digest_id)
    return None


def freeze_routes(
    store: Store,
    routes: Sequence[Route],
    channels: Channels,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> list[FrozenDigest]:
    """`freeze_route` for each route. An unexpected error stays with its route: it is logged
    with the route id and recorded (`monitor status`), the route's matches stay pending and
    the route is tried again after a backoff (`routes_to_retry`); the others go on."""
    health = RouteHealth(store)
    failures = {t.route_id: t.failures for t in health.troubled()}
    frozen = []
    for route in routes:
        try:
            digest = freeze_route(store, route, channels, rules, feeds, now)
        except Exception as error:  # any bug or bad value in one route's digest stays there
            _route_failed(health, route, error, failures.get(route.id, 0) + 1, now)
            continue
        if route.id in failures:
            health.recovered(route.id)
            log.info("route %s: its digest builds again", route.id)
        if digest is not None:
            frozen.append(digest)
    return frozen


def _route_failed(
    health: RouteHealth, route: Route, error: Exception, failures: int, now: datetime
) -> None:
    text = one_line(f"cannot build the digest: {type(error).__name__}: {error}")
    retry_at = now + retry_delay(failures, FIRST_RETRY, None)
    log.error(
        "route %s: %s (its matches stay pending; next try at %s)",
        route.id, text, f"{retry_at:%H:%M:%S}", exc_info=error,
        extra={"receiver": route.receiver},
    )  # fmt: skip
    health.failed(route.id, text, now, retry_at)


# Windows searched, shortest first, for the fire time a cron route's send belongs to: the first
# that holds one gives it in a few steps, whether the route runs every minute or once a year.
_PERIOD_WINDOWS = tuple(timedelta(days=d) for d in (1 / 24, 1, 32, 367))


def cron_period(route: Route, now: datetime) -> datetime:
    """The fire time of a cron route's schedule that a send at `now` is for: the latest at or
    before `now`. Every instance names the period alike, whenever its scheduler ran the job."""
    trigger = schedule_trigger(route)
    if trigger is None:  # immediate: no period
        return now.replace(second=0, microsecond=0)
    for window in _PERIOD_WINDOWS:
        last: datetime | None = None
        fire: datetime | None = trigger.get_next_fire_time(None, now - window)
        while fire is not None and fire <= now:
            last, fire = fire, trigger.get_next_fire_time(None, fire + timedelta(seconds=1))
        if last is not None:
            return last.astimezone(UTC)
    return now.replace(second=0, microsecond=0)


def claim_periods(
    store: Store, periods: Mapping[str, datetime], holder: str, now: datetime
) -> set[str]:
    """The cron routes (id -> period) whose period this instance claims first. For the others
    another instance's scheduler fired first: its digest is that period's only one; the
    matches that came meanwhile wait for the next period."""
    won = set()
    for route_id, period in periods.items():
        if claim_period(store, route_id, period, holder, now):
            won.add(route_id)
        else:
            log.info(
                "route %s: the digest of %s is another instance's", route_id,
                f"{period:%Y-%m-%d %H:%M}", extra={"receiver": route_id},
            )  # fmt: skip
    return won


def routes_to_retry(store: Store, channels: Channels, now: datetime) -> list[Route]:
    """The routes whose last digest failed to build and whose next try is due."""
    due = {
        t.route_id for t in RouteHealth(store).troubled() if t.retry_at is None or t.retry_at <= now
    }
    return [r for r in channels.routes if r.id in due]


async def send_due(
    store: Store, channels: Channels, env: Mapping[str, str], now: datetime | None = None
) -> list[tuple[FrozenDigest, SendResult]]:
    """Send every due digest once; record each outcome. Returns what was attempted."""
    outbox = Outbox(store)
    now = now or datetime.now(UTC)
    done = []
    for digest in outbox.due(now):
        if not outbox.lease(digest.id, now, now + LEASE):
            continue  # another process is sending it
        done.append((digest, await _send_leased(outbox, digest, channels, env, now)))
    return done


async def send_now(
    store: Store, channels: Channels, env: Mapping[str, str], digest_id: str, now: datetime
) -> tuple[FrozenDigest, SendResult] | None:
    """Send one dead or retrying digest now (`monitor digest retry`), byte-identical, and
    record the outcome. None when it is neither, or another process is sending it now."""
    outbox = Outbox(store)
    if not outbox.requeue(digest_id, now) or not outbox.lease(digest_id, now, now + LEASE):
        return None
    digest = outbox.get(digest_id)
    assert digest is not None  # digests are never deleted
    return digest, await _send_leased(outbox, digest, channels, env, now)


async def _send_leased(
    outbox: Outbox, digest: FrozenDigest, channels: Channels, env: Mapping[str, str], now: datetime
) -> SendResult:
    try:
        result = await send_one(digest, channels, env)
    except Exception as error:  # a bug sending one digest must not stop the others
        log.error(
            "digest %s of route %s: unexpected error while sending", digest.id, digest.route_id,
            exc_info=error, extra={"digest": digest.id, "receiver": digest.receiver_id},
        )  # fmt: skip
        text = f"unexpected error: {type(error).__name__}: {error}"
        result = SendResult.temporary(one_line(text))
    route = next((r for r in channels.routes if r.id == digest.route_id), None)
    record(outbox, digest, result, now, route.give_up_after if route else DEFAULT_GIVE_UP)
    return result


async def send_one(digest: FrozenDigest, channels: Channels, env: Mapping[str, str]) -> SendResult:
    receiver = channels.receivers.get(digest.receiver_id)
    if receiver is None:
        return SendResult(
            ok=False,
            retry=True,
            error=f"receiver {digest.receiver_id!r} is no longer in channels.yaml; "
            "add it back or the digest dies when it is 24 h old",
        )
    rendered = Rendered(digest.id, digest.kind, digest.body, digest.subject, digest.content_type)
    if receiver.email is not None:
        return await send_email(rendered, receiver.email, env)
    assert receiver.webhook is not None
    return await send_webhook(rendered, receiver.webhook, env)


def record(
    outbox: Outbox,
    digest: FrozenDigest,
    result: SendResult,
    now: datetime,
    give_up_after: timedelta = DEFAULT_GIVE_UP,
) -> None:
    if result.ok:
        outbox.record_sent(digest.id, now)
        log.info(
            "digest %s delivered to %s",
            digest.id,
            digest.receiver_id,
            extra={"digest": digest.id, "receiver": digest.receiver_id},
        )
        return
    error = result.error or "unknown error"
    if result.gone:
        outbox.disable_receiver(digest.receiver_id, error, now)
        log.error(
            "receiver %s disabled: %s", digest.receiver_id, error,
            extra={"receiver": digest.receiver_id},
        )  # fmt: skip
    retry_at = None
    if result.retry and not result.gone:
        delay = retry_delay(digest.attempts + 1, FIRST_RETRY, result.retry_after)
        if now + delay <= digest.created + give_up_after:
            retry_at = now + delay
        else:
            error = f"gave up after {give_up_after.total_seconds() / 3600:g} h: {error}"
    outbox.record_failure(digest.id, error, retry_at)
    state = f"retry at {retry_at:%H:%M:%S}" if retry_at else "dead"
    log.warning(
        "digest %s to %s failed (%s): %s", digest.id, digest.receiver_id, state, error,
        extra={"digest": digest.id, "receiver": digest.receiver_id},
    )  # fmt: skip

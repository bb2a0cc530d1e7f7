"""From stored matches to receivers: collect, freeze, send, record.

The order is what keeps the promises (never lost, never doubled, resent byte-identical):

1. `freeze_route` collects the route's matches not yet delivered to it, builds the digest,
   renders it to bytes and stores bytes + the items it covers in ONE transaction. Nothing is
   sent before that commit. The `deliveries` table refuses a second digest claiming an item
   for the same route, so two processes cannot both freeze it.
2. `send_due` leases each due digest (so the service and a CLI command never send one at
   once), sends the stored bytes, and only then records `delivered`. A crash between send and
   record leaves the digest due again when the lease runs out: at most one resend, with the
   same bytes and id (Message-ID and `webhook-id` derive from it), never a loss.
3. A failure is retried with exponential backoff and jitter (honouring `Retry-After`) until
   the digest is `max_age` old, then it is dead with its reason; permanent failures (a 4xx
   other than 408/429, a rejected address) go dead at once; a webhook answering 410 disables
   its receiver.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.backoff import retry_delay
from monitor.deliver import SendResult, send_email, send_webhook
from monitor.digest.channels import Channels
from monitor.digest.render.email import render_email
from monitor.digest.render.webhook import render_webhook
from monitor.match.rule import Rule
from monitor.models import (
    SEVERITIES,
    Digest,
    DigestEntry,
    Feed,
    Receiver,
    Rendered,
    Route,
    RuleRef,
    StoredItem,
)
from monitor.store import Store
from monitor.store.outbox import FrozenDigest, Outbox, PendingMatch

log = logging.getLogger("monitor.dispatch")

DEFAULT_GIVE_UP = Route.give_up_after  # for digests whose route was removed since
LEASE = timedelta(minutes=5)  # how long a send may take before the digest is due again
FIRST_RETRY = timedelta(minutes=1)
# A new route also takes the matches of the day before it was first seen, so a route set up
# right after a poll still delivers that poll's alerts, without flooding anyone with history.
CATCH_UP = timedelta(hours=24)


@dataclass(frozen=True)
class Collected:
    """A digest ready to freeze, and the items it covers."""

    digest: Digest
    shown: tuple[int, ...]  # item ids in the digest
    summarised: tuple[int, ...]  # over max_items: counted ("N more"), claimed, not listed


def rule_ref(rules: Mapping[str, Rule], match: PendingMatch) -> RuleRef:
    rule = rules.get(match.rule_id)
    if rule is None:  # deleted since it matched: still delivered, never silently dropped
        return RuleRef(match.rule_id, match.rule_id, "medium", terms=match.terms)
    return RuleRef(rule.id, rule.title, rule.severity, dict(rule.labels), match.terms)


def accepts(route: Route, ref: RuleRef) -> bool:
    """Whether a route takes matches of this rule (its severity, rule and label criteria)."""
    m = route.match
    if m.severity and ref.severity not in m.severity:
        return False
    if m.rules and ref.id not in m.rules:
        return False
    return all(ref.labels.get(k) == v for k, v in m.labels.items())


def in_regions(route: Route, stored: StoredItem) -> bool:
    wanted = route.match.regions
    return not wanted or bool(set(wanted) & set(stored.item.regions))


def _entry_key(entry: DigestEntry) -> tuple[int, float]:
    """Most severe first, then newest."""
    return (-SEVERITIES.index(entry.severity), -entry.item.published.timestamp())


def collect(
    store: Store,
    route: Route,
    receiver: Receiver,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> Collected | None:
    """The route's digest as of `now`, or None when there is nothing (and no send_empty)."""
    outbox = Outbox(store)
    pending = outbox.pending(route.id, outbox.route_start(route.id, now) - CATCH_UP)
    by_item: dict[int, list[RuleRef]] = {}
    times: dict[int, datetime] = {}
    for match in pending:
        ref = rule_ref(rules, match)
        if accepts(route, ref):
            by_item.setdefault(match.item_id, []).append(ref)
            times.setdefault(match.item_id, match.matched_at)
    stored = [s for s in store.get_items(list(by_item)) if in_regions(route, s)]
    entries = sorted((_entry(s, by_item[s.id], feeds) for s in stored), key=_entry_key)
    if not entries and not route.send_empty:
        return None
    shown, rest = entries[: route.max_items], entries[route.max_items :]
    digest = Digest(
        id=f"{now:%Y%m%dT%H%M%SZ}-{route.id}-{uuid.uuid4().hex[:8]}",
        route=route,
        receiver=receiver,
        created=now,
        window_start=min((times[s.id] for s in stored), default=None),
        window_end=now,
        entries=tuple(shown),
        truncated=len(rest),
    )
    return Collected(digest, tuple(e.item_id for e in shown), tuple(e.item_id for e in rest))


def _entry(stored: StoredItem, refs: Sequence[RuleRef], feeds: Mapping[str, Feed]) -> DigestEntry:
    feed = feeds.get(stored.item.feed_id)
    title = (feed.title if feed else None) or stored.item.feed_id
    return DigestEntry(item_id=stored.id, item=stored.item, feed_title=title, rules=tuple(refs))


def render(digest: Digest) -> Rendered:
    """Frozen bytes for the digest's receiver (the digest's own time, so bytes are stable)."""
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
        collected = collect(store, route, receiver, rules, feeds, now)
        if collected is None:
            return None
        rendered = render(collected.digest)
        outbox = Outbox(store)
        if outbox.freeze(
            rendered, route.id, receiver.id, collected.shown, collected.summarised, now
        ):
            log.info(
                "digest %s frozen for route %s: %d items (%d more summarised)",
                rendered.digest_id, route.id, len(collected.shown), len(collected.summarised),
            )  # fmt: skip
            return outbox.get(rendered.digest_id)
    return None


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
        result = await send_one(digest, channels, env)
        route = next((r for r in channels.routes if r.id == digest.route_id), None)
        record(outbox, digest, result, now, route.give_up_after if route else DEFAULT_GIVE_UP)
        done.append((digest, result))
    return done


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

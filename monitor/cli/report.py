"""Plain-text and JSON views for the CLI: pure functions from values to strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from monitor.yamlfile.duration import format_duration as duration

if TYPE_CHECKING:  # models and the store's modules load with the command that uses them
    from monitor.ingest.feedstate import Schedule
    from monitor.models import CycleSummary, Feed, FeedState, StoredItem
    from monitor.store.cluster import Instance
    from monitor.store.outbox import FrozenDigest
    from monitor.store.routes import RouteTrouble

ERROR_WIDTH = 70


def span(delta: timedelta) -> str:
    """A duration for people: `45s`, `16m`, `2h05m`, `3d04h` (rounded, two units at most)."""
    seconds = round(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{days}d{hours % 24:02d}h"


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    delta = now - when
    return "in " + span(delta) if delta < timedelta(0) else span(delta) + " ago"


def health(feed: Feed, state: FeedState | None) -> str:
    """One word for a feed's state."""
    if not feed.enabled:
        return "disabled"
    if state is None or state.last_attempt is None:
        return "new"
    if state.gone:
        return "gone"
    if state.consecutive_errors:
        return f"failing x{state.consecutive_errors}"
    return "ok"


def cycle(summary: CycleSummary, now: datetime) -> str:
    from monitor.models import FetchStatus

    """The one-screen summary `monitor poll` prints."""
    lines = [
        f"polled {len(summary.outcomes)} feeds in {summary.elapsed:.1f} s: "
        f"{summary.count(FetchStatus.OK)} ok, "
        f"{summary.count(FetchStatus.NOT_MODIFIED)} not modified, "
        f"{summary.count(FetchStatus.ERROR)} failed, {summary.count(FetchStatus.GONE)} gone",
        f"items: {summary.new} new, {summary.updated} updated; {summary.matches} rule matches, "
        f"{summary.history} kept as history (old news: never alerted)",
    ]
    failures = [o for o in summary.outcomes if o.error]
    for o in sorted(failures, key=lambda o: o.feed_id)[:15]:
        lines.append(f"  ! {o.feed_id}: {_clip(o.error or '')}")
    if len(failures) > 15:
        lines.append(f"  ... and {len(failures) - 15} more failed feeds (see `monitor status`)")
    for feed_id, due in summary.backing_off:
        when = ago(due, now) if due and due > now else "at the next cycle"
        lines.append(f"  - {feed_id}: backing off after errors, next try {when}")
    if summary.backing_off:
        lines.append("  (`monitor poll --force` polls them now)")
    for feed_id, holder in summary.held:
        lines.append(f"  - {feed_id}: left out, instance {holder} is polling it right now")
    return "\n".join(lines)


def not_polled(
    feeds: Sequence[Feed], summary: CycleSummary, states: Mapping[str, Schedule]
) -> list[str]:
    """Why the feeds a cycle neither polled nor reported as backing off were left out."""
    seen = {o.feed_id for o in summary.outcomes} | {f for f, _ in summary.backing_off}
    lines = []
    for feed in feeds:
        state = states.get(feed.id)
        if feed.id in seen:
            continue
        if not feed.enabled:
            lines.append(f"  - {feed.id}: disabled (enabled: false in feeds.yaml)")
        elif state is not None and state.gone:
            lines.append(f"  - {feed.id}: gone (HTTP 410); remove and re-add it to try again")
    return lines


def _clip(text: str, width: int = ERROR_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def feeds_table(feeds: Sequence[Feed], states: Mapping[str, FeedState], now: datetime) -> str:
    if not feeds:
        return "no feeds yet: add one with `monitor feeds add URL`"
    rows = [["ID", "HEALTH", "EVERY", "LAST OK", "TAGS", "URL"]]
    for feed in feeds:
        state = states.get(feed.id)
        rows.append(
            [
                feed.id,
                health(feed, state),
                duration(feed.interval),
                ago(state.last_success if state else None, now),
                ",".join(feed.tags),
                state.url if state else feed.url,
            ]
        )
    return _table(rows)


def status(
    feeds: Sequence[Feed],
    states: Mapping[str, FeedState],
    total_items: int,
    now: datetime,
    matches: tuple[int, int] = (0, 0),
) -> str:
    """The feeds table under one line of totals; `matches` is (all, kept as history)."""
    rows = [["FEED", "HEALTH", "LAST POLL", "LAST OK", "NEXT", "LAST ERROR"]]
    for feed in feeds:
        state = states.get(feed.id)
        rows.append(
            [
                feed.id,
                health(feed, state),
                ago(state.last_attempt if state else None, now),
                ago(state.last_success if state else None, now),
                ago(state.next_due, now) if state and state.next_due else "-",
                _clip(state.last_error or "", 50) if state else "",
            ]
        )
    failing = sum(1 for f in feeds if health(f, states.get(f.id)).startswith(("failing", "gone")))
    head = f"{len(feeds)} feeds ({failing} failing or gone), {total_items} items stored"
    head += f", {matches[0]} rule matches ({matches[1]} kept as history: old news, never alerted)"
    return head + "\n\n" + _table(rows) if feeds else head


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def feed_json(feed: Feed, state: FeedState | None) -> dict[str, Any]:
    return {
        "id": feed.id,
        "url": state.url if state else feed.url,
        "configured_url": feed.url,
        "title": feed.title,
        "tags": list(feed.tags),
        "interval": duration(feed.interval),
        "enabled": feed.enabled,
        "health": health(feed, state),
        "last_attempt": _iso(state.last_attempt) if state else None,
        "last_success": _iso(state.last_success) if state else None,
        "consecutive_errors": state.consecutive_errors if state else 0,
        "last_error": state.last_error if state else None,
        "next_due": _iso(state.next_due) if state else None,
    }


def stamp(when: datetime, tz: tzinfo | None) -> str:
    """A time for people, with its zone: `2025-12-02 17:00+09:00`. `tz` None is the local
    time zone of this machine (`TZ`), at that date: daylight saving time is respected."""
    return when.astimezone(tz).isoformat(sep=" ", timespec="minutes")


def item_json(
    stored: StoredItem,
    rules: Sequence[str] = (),
    tz: tzinfo | None = None,
    story: int | None = None,
) -> dict[str, Any]:
    item = stored.item
    return {
        "id": stored.id,
        "feed": item.feed_id,
        "guid": item.guid,
        "title": item.title,
        "summary": item.summary,
        "link": item.link,
        "lang": item.lang,
        "published": item.published.astimezone(tz).isoformat(),
        "first_seen": item.first_seen.astimezone(tz).isoformat(),
        "regions": list(item.regions),
        "entities": [tag.as_json() for tag in item.entities],
        "rules": list(rules),
        "story": story,  # its story's id; None when stored before stories existed
    }


def item_lines(stored: StoredItem, rules: Sequence[str] = (), tz: tzinfo | None = None) -> str:
    item = stored.item
    lines = [f"[{stored.id}] {stamp(item.published, tz)}  {item.feed_id}  {item.title}"]
    tags = ", ".join(item.regions) or "-"
    lines.append(f"      regions: {tags}" + (f"; rules: {', '.join(rules)}" if rules else ""))
    if item.link:
        lines.append(f"      {item.link}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Deliveries:
    counts: Mapping[str, int]  # digests by status
    troubled: Sequence[FrozenDigest]  # recent retrying and dead digests
    disabled: Mapping[str, str]  # receiver id -> why
    routes: Sequence[RouteTrouble] = ()  # routes whose digest could not be built


def deliveries(d: Deliveries, now: datetime) -> str:
    order = ("pending", "retrying", "delivered", "dead")
    head = "digests: " + ", ".join(f"{d.counts.get(s, 0)} {s}" for s in order)
    lines = [head]
    for digest in d.troubled:
        when = f"next try {ago(digest.next_attempt, now)}" if digest.status == "retrying" else ""
        lines.append(
            f"  {digest.status:8s} {digest.id} to {digest.receiver_id}, "
            f"{digest.attempts} attempts {when}: {_clip(digest.last_error or '', 60)}"
        )
    if any(digest.status == "dead" for digest in d.troubled):
        lines.append("  (re-queue a dead digest with `monitor digest retry ID`)")
    for receiver, why in sorted(d.disabled.items()):
        lines.append(f"  receiver {receiver} disabled: {_clip(why, 60)}")
    for trouble in d.routes:
        lines.append(
            f"  route {trouble.route_id}: digest not built ({trouble.failures} "
            f"failure{'s' if trouble.failures != 1 else ''}, first {ago(trouble.since, now)}, "
            f"next try {ago(trouble.retry_at, now)}): {_clip(trouble.last_error, 60)}"
        )
    return "\n".join(lines)


def deliveries_json(d: Deliveries) -> dict[str, Any]:
    return {
        "counts": dict(d.counts),
        "troubled": [
            {
                "id": x.id,
                "route": x.route_id,
                "receiver": x.receiver_id,
                "status": x.status,
                "attempts": x.attempts,
                "next_attempt": _iso(x.next_attempt),
                "last_error": x.last_error,
            }
            for x in d.troubled
        ],
        "disabled_receivers": dict(d.disabled),
        "failing_routes": [
            {
                "route": t.route_id,
                "failures": t.failures,
                "since": _iso(t.since),
                "next_attempt": _iso(t.retry_at),
                "last_error": t.last_error,
            }
            for t in d.routes
        ],
    }


def instances(live: Sequence[Instance], now: datetime) -> str:
    """The live `monitor run` instances on the database and the feeds each is polling now."""
    if not live:
        return "instances: no monitor run is live on this database"
    lines = [f"instances: {len(live)} live"]
    for one in live:
        held = one.feeds_held
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        holds = f"polling {len(held)} feeds now ({shown})" if held else "polling no feed now"
        lines.append(
            f"  {one.id}: pid {one.pid} on {one.host}, monitor {one.version}, up "
            f"{span(now - one.started)}, seen {ago(one.seen, now)}; {holds}"
        )
    return "\n".join(lines)


def instances_json(live: Sequence[Instance]) -> list[dict[str, Any]]:
    return [
        {
            "id": one.id,
            "host": one.host,
            "pid": one.pid,
            "started": one.started.isoformat(),
            "seen": one.seen.isoformat(),
            "feeds_held": list(one.feeds_held),
        }
        for one in live
    ]

"""Surges after a poll: detect them (`detect`), then freeze one alert per surge for each route
that takes it (`freeze_surges`); the outbox sends them like digests.

Detection runs under the file's thresholds (`surge:` in channels.yaml) and under each set of
thresholds a route gives itself; a surge remembers which (`profile`), and a route takes the
surges found with its own thresholds. A route takes a surge when it lists the surge's kind in
`match: {surge: [...]}` and its other criteria (severity, rules, regions, labels) accept the
rules and regions of what surged, as they would for a match.

Every surge that fires is logged as one line with its kind, key and why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.digest.channels import Channels
from monitor.digest.collect import CATCH_UP, accepts, rule_ref
from monitor.digest.render.surge import SurgeAlert, render_surge
from monitor.ingest.feedstate import history_before
from monitor.match.rule import Rule, held
from monitor.models import DigestEntry, Feed, FeedState, Route, RuleRef, Settings, StoredItem
from monitor.store import Store
from monitor.store.outbox import PendingMatch
from monitor.store.surges import StoredSurge, Surges
from monitor.story.surge import (
    HOUR,
    StoryReport,
    Surge,
    SurgeSettings,
    story_surge,
    volume_surges,
)

log = logging.getLogger("monitor.surge")


def profiles(channels: Channels) -> list[SurgeSettings]:
    """The file's thresholds first, then each other set a route gives itself."""
    found = [channels.surge]
    for route in channels.routes:
        if route.surge is not None and route.surge not in found:
            found.append(route.surge)
    return found


def detect(
    store: Store, channels: Channels, settings: Settings, now: datetime
) -> list[StoredSurge]:
    """Find the surges of now and record those out of their cooldown; returns them. What ingest
    keeps as history (`settings`: old news when first seen) never surges."""
    surges, states = Surges(store), store.states()
    thresholds = profiles(channels)
    fired: list[StoredSurge] = []
    counts = surges.volume_counts(now, min(t.volume.min for t in thresholds))
    watched = _watched(states.values(), settings, now)
    for one in thresholds:
        profile = one.profile("volume")
        found = volume_surges(counts, one.volume, now, watched)
        fired += surges.fire([replace(s, profile=profile) for s in found], one.volume.cooldown)
    stories = surges.story_reports(now - max(t.story.window for t in thresholds))
    for story_id, reports in stories.items():
        stories[story_id] = [replace(r, fresh=_fresh(r, states, settings)) for r in reports]
    for one in thresholds:
        profile = one.profile("story")
        found = [
            replace(surge, profile=profile)
            for story_id, reports in sorted(stories.items())
            if (surge := story_surge(story_id, reports, one.story, now)) is not None
        ]
        fired += surges.fire(found, one.story.cooldown)
    for stored in fired:
        _log(stored)
    return fired


def _watched(states: Iterable[FeedState], settings: Settings, now: datetime) -> timedelta:
    """How long before the last hour the store has been watching: since its first poll, less
    the grace within which that poll took news as fresh (a new install has no week behind it)."""
    firsts = [s.first_polled for s in states if s.first_polled is not None]
    if not firsts:
        return timedelta(0)
    return now - HOUR - (min(firsts) - settings.first_poll_grace)


def _fresh(report: StoryReport, states: Mapping[str, FeedState], settings: Settings) -> bool:
    """Whether the report was news when first seen, as ingest judges its matches."""
    state = states.get(report.feed_id) or FeedState(feed_id=report.feed_id, url="")
    return report.published >= history_before(state, settings, report.first_seen)


def _log(stored: StoredSurge) -> None:
    surge = stored.surge
    log.warning(
        "surge %d: %s %s: %s", stored.id, surge.kind, surge.key, surge.why,
        extra={"surge": stored.id, "surge_kind": surge.kind, "surge_key": surge.key},
    )  # fmt: skip


def freeze_surges(
    store: Store,
    channels: Channels,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> list[str]:
    """Freeze an alert of each pending surge for each route that takes it; the digest ids."""
    surges = Surges(store)
    frozen = []
    for route in channels.routes:
        if not route.match.surge:
            continue
        mine = route.surge or channels.surge
        wanted = [(kind, mine.profile(kind)) for kind in route.match.surge]
        # A surge is news for a day: a route added later takes the last day's, as it does
        # matches, and one it does not take is not looked at again after that.
        for stored in surges.pending(route.id, now - CATCH_UP, wanted):
            if _muted(stored.surge, rules, now, route.timezone):
                continue  # held like the rule's matches: it goes out if the mute ends in time
            alert = _alert(store, route, channels, stored, rules, feeds)
            if not _takes(route, alert):
                continue
            if surges.freeze(render_surge(alert), route.id, route.receiver, stored.id, now):
                frozen.append(alert.id)
                log.info(
                    "surge %d: alert %s frozen for route %s", stored.id, alert.id, route.id,
                    extra={"digest": alert.id, "receiver": route.receiver},
                )  # fmt: skip
    return frozen


def _alert(
    store: Store,
    route: Route,
    channels: Channels,
    stored: StoredSurge,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
) -> SurgeAlert:
    surge = stored.surge
    # A story unfolds in the order it was reported; a burst of matches reads newest first.
    items = sorted(store.get_items(list(surge.items)), key=lambda s: (s.item.published, s.id))
    if surge.kind == "volume":
        items.reverse()
    matched = store.matched_rules([s.id for s in items])
    reports = tuple(_entry(s, matched.get(s.id, []), rules, feeds) for s in items)
    return SurgeAlert(
        id=f"{surge.fired_at:%Y%m%dT%H%M%SZ}-{route.id}-surge-{stored.id}",
        route=route,
        receiver=channels.receivers[route.receiver],
        surge_id=stored.id,
        surge=surge,
        title=_title(surge, items, rules),
        reports=reports,
    )


def _entry(
    stored: StoredItem,
    rule_ids: Sequence[str],
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
) -> DigestEntry:
    refs = tuple(
        rule_ref(rules, PendingMatch(stored.id, r, 0.0, (), stored.item.first_seen))
        for r in rule_ids
    )
    feed = feeds.get(stored.item.feed_id)
    title = (feed.title if feed else None) or stored.item.feed_id
    return DigestEntry(item_id=stored.id, item=stored.item, feed_title=title, rules=refs)


def _title(surge: Surge, items: Sequence[StoredItem], rules: Mapping[str, Rule]) -> str:
    """What surged, in words: a story by its first report, a rule by its title."""
    kind, _, name = surge.key.partition(":")
    if kind == "story":
        first = min(items, key=lambda s: (s.item.published, s.id), default=None)
        return first.item.title if first else f"story {name}"
    if kind == "rule":
        rule = rules.get(name)
        return f"{rule.title} ({name})" if rule else name
    return f"region {name}"


def _muted(surge: Surge, rules: Mapping[str, Rule], now: datetime, timezone: str) -> bool:
    kind, _, name = surge.key.partition(":")
    return kind == "rule" and held(rules.get(name), now, timezone)


def _takes(route: Route, alert: SurgeAlert) -> bool:
    """Whether the route's criteria accept what surged: a story by any rule its reports
    matched, a rule by itself; a region has no rule, so only routes without rule criteria
    (severity, rules, labels) take its surges. `regions:` wants any region of the reports."""
    kind, _, name = alert.surge.key.partition(":")
    refs: list[RuleRef] = [r for e in alert.reports for r in e.rules]
    if kind == "rule":
        refs = [r for r in refs if r.id == name][:1] or [RuleRef(name, name, "medium")]
    elif kind == "region":
        refs = []
    regions = {name} if kind == "region" else {c for e in alert.reports for c in e.item.regions}
    if route.match.regions and not regions & set(route.match.regions):
        return False
    has_criteria = route.match.severity or route.match.rules or route.match.labels
    return not has_criteria or any(accepts(route, r) for r in refs)

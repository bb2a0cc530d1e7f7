"""Prometheus metrics of the service, fed from what the pipeline stages already return.

Nothing here reaches into poll or dispatch: the service hands over each cycle's
`CycleSummary`, each `send_due` result, the outbox counts and each reload's outcome. The
metrics live in a private `CollectorRegistry` (the global one would mix in process defaults
and break when two services run in one test process).

Matches by rule come from the store's per-rule totals: the cycle only returns a count per
feed, and the difference between two totals is exact and costs one indexed query per cycle
that matched something (it also counts matches `monitor poll` recorded meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor.deliver import SendResult
from monitor.models import CycleSummary, FetchStatus
from monitor.store.cluster import instance_id
from monitor.store.outbox import FrozenDigest
from monitor.story.surge import KINDS as SURGE_KINDS

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = {
    FetchStatus.OK: "ok",
    FetchStatus.NOT_MODIFIED: "not_modified",
    FetchStatus.ERROR: "error",
    FetchStatus.GONE: "gone",
}
QUEUES = ("pending", "retrying", "dead")
CONFIGS = ("feeds", "rules", "channels")
# Fetches take from a few milliseconds (304 from a near server) to the fetch timeout.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric of the service; `render()` is the /metrics page."""

    def __init__(self, instance: str | None = None) -> None:
        # No `*_created` series: they double the page and nobody graphs them. (A process-wide
        # switch of prometheus-client; the service is the only user in its process.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = r = CollectorRegistry()
        self.last_success_at: float | None = None  # unix time, for /healthz
        # Series that differ per instance carry its id (several instances on one database).
        self.instance = instance or instance_id()
        self.polls = Counter(
            "monitor_polls", "Feed polls by outcome.", ["outcome", "instance"], registry=r
        )
        self.info = Gauge(
            "monitor_instance_info", "This instance and its database backend (always 1).",
            ["instance", "backend"], registry=r,
        )  # fmt: skip
        self.feeds_held = Gauge(
            "monitor_feeds_held", "Feeds this instance has claimed and not yet released.",
            ["instance"], registry=r,
        )  # fmt: skip
        self.fetch_seconds = Histogram(
            "monitor_fetch_seconds",
            "Time to poll one feed (fetch, parse, store).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "monitor_items_stored", "Items stored, new or updated.", ["change"], registry=r
        )
        self.matches = Counter(
            "monitor_matches", "Rule matches recorded.", ["rule", "severity"], registry=r
        )
        self.digests = Counter(
            "monitor_digests",
            "Digest send attempts by receiver and result (sent, failed = will retry, dead).",
            ["receiver", "result"],
            registry=r,
        )
        self.outbox = Gauge("monitor_outbox_digests", "Digests by status.", ["status"], registry=r)
        self.surges = Counter(
            "monitor_surges", "Surges fired (story, volume), each once per cooldown.", ["kind"],
            registry=r,
        )  # fmt: skip
        self._reload_metrics(r)
        self._zero()

    def _reload_metrics(self, r: CollectorRegistry) -> None:
        self.reloads = Counter(
            "monitor_reloads", "Configuration reloads that took effect.", ["config"], registry=r
        )
        self.reload_errors = Counter(
            "monitor_reload_errors",
            "Edits refused as invalid (the last good configuration stayed).",
            ["config"],
            registry=r,
        )
        self.rules = Gauge("monitor_rules", "Alert rules in force.", registry=r)
        self.last_success = Gauge(
            "monitor_last_successful_poll_timestamp_seconds",
            "When a feed was last polled successfully (unix time; 0 = not yet).",
            registry=r,
        )

    def _zero(self) -> None:
        """Show every fixed label from the start, so a rate() has a first point at 0."""
        for outcome in OUTCOMES.values():
            self.polls.labels(outcome, self.instance)
        self.feeds_held.labels(self.instance)
        for change in ("new", "updated"):
            self.items.labels(change)
        for status in QUEUES:
            self.outbox.labels(status)
        for kind in SURGE_KINDS:
            self.surges.labels(kind)
        for config in CONFIGS:
            self.reloads.labels(config)
            self.reload_errors.labels(config)

    def cycle(self, summary: CycleSummary, now: float | None = None) -> None:
        """Count one poll cycle's outcomes."""
        succeeded = False
        for outcome in summary.outcomes:
            self.polls.labels(OUTCOMES[outcome.status], self.instance).inc()
            self.fetch_seconds.observe(outcome.elapsed)
            succeeded = succeeded or outcome.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED)
        self.items.labels("new").inc(summary.new)
        self.items.labels("updated").inc(summary.updated)
        if succeeded:
            self.last_success_at = time.time() if now is None else now
            self.last_success.set(self.last_success_at)

    def identify(self, backend: str) -> None:
        """`monitor_instance_info{instance, backend} 1`, once the database is open."""
        self.info.labels(self.instance, backend).set(1)

    def held(self, feeds: int) -> None:
        self.feeds_held.labels(self.instance).set(feeds)

    def matched(self, new: Mapping[str, int], severity: Mapping[str, str]) -> None:
        """Count new matches per rule; a rule deleted since is `unknown` severity."""
        for rule_id, count in new.items():
            self.matches.labels(rule_id, severity.get(rule_id, "unknown")).inc(count)

    def sent(self, results: Sequence[tuple[FrozenDigest, SendResult, str]]) -> None:
        """Count send attempts as (digest, result, status recorded after it)."""
        for digest, result, status in results:
            outcome = "sent" if result.ok else ("dead" if status == "dead" else "failed")
            self.digests.labels(digest.receiver_id, outcome).inc()

    def queue(self, counts: Mapping[str, int]) -> None:
        for status in QUEUES:
            self.outbox.labels(status).set(counts.get(status, 0))

    def reloaded(self, config: str, ok: bool) -> None:
        (self.reloads if ok else self.reload_errors).labels(config).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def new_matches(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Matches added per rule between two totals. Retention only removes, so a total that
    went down counts nothing (the caller takes `after` as its next baseline)."""
    grown = {rule: n - before.get(rule, 0) for rule, n in after.items()}
    return {rule: n for rule, n in grown.items() if n > 0}

"""The service's surge steps: detection after each poll cycle that polled a feed, and the
freezing of surge alerts at the start of each delivery round. A failure in either is logged
and stays there: polling and digests go on, and the next cycle or round tries again (what was
detected is stored, so nothing is lost)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from monitor.digest.channels import Channels
from monitor.digest.surges import detect, freeze_surges
from monitor.errors import MonitorError
from monitor.match.rule import Rule
from monitor.models import Feed, Settings
from monitor.service.metrics import Metrics
from monitor.store import Store

log = logging.getLogger("monitor.surge")


def detect_surges(store: Store, channels: Channels, settings: Settings, metrics: Metrics) -> int:
    """Detect and record surges now; counts them in /metrics. How many fired."""
    try:
        fired = detect(store, channels, settings, datetime.now(UTC))
    except MonitorError as error:
        log.error("surge detection: %s (the next poll cycle tries again)", error)
        return 0
    except Exception:
        log.exception("surge detection: unexpected error (the next poll cycle tries again)")
        return 0
    for stored in fired:
        metrics.surges.labels(stored.surge.kind).inc()
    return len(fired)


def freeze_surge_alerts(
    store: Store,
    channels: Channels,
    rules: Mapping[str, Rule],
    feeds: Mapping[str, Feed],
    now: datetime,
) -> None:
    """Freeze the alerts of surges not yet sent to the routes that take them."""
    try:
        freeze_surges(store, channels, rules, feeds, now)
    except MonitorError as error:
        log.error("surge alerts: %s (the next round tries again)", error)
    except Exception:
        log.exception("surge alerts: unexpected error (the next round tries again)")

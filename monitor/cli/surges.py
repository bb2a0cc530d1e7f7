"""What `monitor status` shows of surges: how many fired per kind, and the latest with why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.cli.report import ago
from monitor.store import Store
from monitor.store.surges import StoredSurge, Surges
from monitor.story.surge import KINDS


@dataclass(frozen=True)
class SurgeStatus:
    counts: dict[str, int]  # fired, per kind
    recent: list[StoredSurge]  # the latest first


def surge_status(store: Store, limit: int = 5) -> SurgeStatus:
    surges = Surges(store)
    return SurgeStatus(counts=surges.counts(), recent=surges.recent(limit))


def surge_lines(status: SurgeStatus, now: datetime) -> str:
    head = "surges: " + ", ".join(f"{status.counts.get(k, 0)} {k}" for k in KINDS)
    lines = [head]
    for stored in status.recent:
        s = stored.surge
        lines.append(f"  {ago(s.fired_at, now):>9}  {s.kind:6s} {s.key}: {s.why}")
    return "\n".join(lines)


def surges_json(status: SurgeStatus) -> dict[str, Any]:
    return {
        "counts": {k: status.counts.get(k, 0) for k in KINDS},
        "recent": [
            {
                "id": s.id,
                "kind": s.surge.kind,
                "key": s.surge.key,
                "why": s.surge.why,
                "fired_at": s.surge.fired_at.isoformat(),
            }
            for s in status.recent
        ],
    }

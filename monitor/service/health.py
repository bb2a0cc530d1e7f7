"""What `GET /healthz` says: 200 `{"status": "ok", ...}` or 503 `{"status": "unhealthy",
"reason": ...}`, from a check function the service provides. It is served with the console
(`monitor.web`), from a thread of its own: a probe never waits for a poll cycle on the event
loop, and a stuck event loop still gets an answer (the scheduler check then tells).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("monitor.health")


@dataclass(frozen=True)
class Health:
    ok: bool
    details: dict[str, object] = field(default_factory=dict)
    reason: str | None = None

    def body(self) -> dict[str, object]:
        if self.ok:
            return {"status": "ok", **self.details}
        return {"status": "unhealthy", "reason": self.reason, **self.details}

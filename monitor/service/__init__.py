"""The background service (`monitor run`): the scheduler that decides when polls run, the
delivery job beside it (neither ever waits for the other), the watchdog behind /healthz, the
health and metrics endpoint, reloads of rules/, signals that stop it in time whatever hangs,
`.env`, logging with secret redaction and the instance lock; `instance` is the service as one
of several on a database (its id, heartbeat and sign-off). After each poll cycle that
polled a feed it detects surges (`surging`), and each delivery round freezes their alerts. It
calls the same stage functions as the CLI; it makes no requests and speaks no SQL itself.

Entry points: `run_service` with `ServiceOptions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.service.service import ServiceOptions, run_service

__all__ = ["ServiceOptions", "run_service"]
__getattr__ = exports(__name__, {"run_service": "service", "ServiceOptions": "service"})

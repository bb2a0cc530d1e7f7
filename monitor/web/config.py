"""What the console needs to know: where the data is, who may see it, how it is exposed."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import MonitorError
from monitor.service.health import Health
from monitor.store.location import DbLocation

TOKEN_ENV = "MONITOR_WEB_TOKEN"
MIN_TOKEN = 16  # characters: a token short enough to guess is refused like a missing one


@dataclass(frozen=True)
class WebConfig:
    db: DbLocation  # a SQLite file or a PostgreSQL URL
    rules_dir: Path
    host: str = "127.0.0.1"
    token: str | None = None  # required when host is not a loopback address
    health: Callable[[], Health] | None = None  # the service's check; `monitor web` has none
    metrics: Callable[[], tuple[bytes, str]] | None = None
    # The service's delivery job, woken from the console's thread when a digest is requeued
    # (Deliveries' Retry button) so it goes out at once; `monitor web` has none.
    wake_delivery: Callable[[], object] | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def token_from_env() -> str | None:
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def checked_token(host: str, token: str | None) -> str | None:
    """The token the console requires, or None on loopback without one. Bound elsewhere
    without a token of at least MIN_TOKEN characters the console refuses to start: its pages
    show everything stored and can requeue deliveries."""
    if token is not None and len(token) < MIN_TOKEN:
        raise MonitorError(
            f"{TOKEN_ENV} is {len(token)} characters long; at least {MIN_TOKEN} are required",
            hint="make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'",
        )
    if token is None and not is_loopback(host):
        raise MonitorError(
            f"the console would listen on {host} without a token",
            hint=f"set {TOKEN_ENV} (e.g. in .env), or listen on 127.0.0.1",
        )
    return token

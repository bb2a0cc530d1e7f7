"""`monitor web` in the foreground: the console's server until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from monitor.store.location import DbLocation
from monitor.web.config import WebConfig, checked_token, token_from_env
from monitor.web.server import start_console


def serve_console(
    db: DbLocation, rules: Path, host: str, port: int, *, echo: Callable[[str], None]
) -> None:
    token = checked_token(host, token_from_env())
    config = WebConfig(db=db, rules_dir=rules, host=host, token=token)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stopping)
    server = start_console(config, port)
    login = " (token required: MONITOR_WEB_TOKEN)" if token else ""
    echo(f"console on {server.url}/{login}; Ctrl-C stops it")
    try:
        stop.wait()
    finally:
        server.stop()

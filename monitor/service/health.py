"""The service's small HTTP endpoint: `GET /healthz` and `GET /metrics`.

A stdlib `ThreadingHTTPServer` in a daemon thread: a scrape or a health probe never waits for
a poll cycle on the event loop, and a stuck event loop still gets an answer (the scheduler
check then tells). `/healthz` answers 200 `{"status": "ok", ...}` or 503
`{"status": "unhealthy", "reason": ...}` from a check function the service provides.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.errors import MonitorError

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


class HealthServer:
    """Serves /healthz and /metrics on host:port (port 0 picks a free one) until `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        check: Callable[[], Health],
        metrics: Callable[[], tuple[bytes, str]],
    ) -> None:
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as error:
            raise MonitorError(
                f"cannot serve /healthz and /metrics on {host}:{port}: {error.strerror or error}",
                hint="choose another --health-port (0 picks a free one) or stop what uses it",
            ) from error
        self._server.check, self._server.metrics = check, metrics
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds the service's exit
    check: Callable[[], Health]
    metrics: Callable[[], tuple[bytes, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._health()
        elif path == "/metrics":
            body, content_type = self.server.metrics()
            self._send(200, body, content_type)
        else:
            self._send(404, b"not found: try /healthz or /metrics\n", "text/plain")

    def _health(self) -> None:
        try:
            health = self.server.check()
        except Exception as exc:  # a bug in a check must answer 503, not hang up
            log.exception("health check failed")
            health = Health(ok=False, reason=f"health check failed: {exc!r}")
        body = json.dumps(health.body(), ensure_ascii=False).encode() + b"\n"
        self._send(200 if health.ok else 503, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not an event worth a log line

"""The demo's local receivers: an SMTP server and a webhook endpoint, both on 127.0.0.1.

They keep what they receive in memory; `monitor demo` writes it under `state/demo/`. The
webhook endpoint checks each request's Standard Webhooks signature with the `standardwebhooks`
package, as a real receiver would.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOST = "127.0.0.1"
SMTP_LOGGER = "mail.log"  # aiosmtpd's logger


def new_secret() -> str:
    """A fresh Standard Webhooks secret (`whsec_` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(bytes(content))
        return "250 Message accepted for delivery"


class DemoSmtp:
    """An SMTP server that accepts everything and keeps the raw messages.

    aiosmtpd logs every connection and command at INFO on the `mail.log` logger; while this
    server runs, that logger only passes warnings, so the demo's output is its own summary.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self._mailbox = _Mailbox()
        self._controller = Controller(self._mailbox, hostname=HOST, port=self.port)
        self._log = logging.getLogger(SMTP_LOGGER)
        self._log_level = self._log.level

    @property
    def messages(self) -> list[bytes]:
        return self._mailbox.messages

    def __enter__(self) -> DemoSmtp:
        self._log_level = self._log.level
        self._log.setLevel(logging.WARNING)
        try:
            self._controller.start()
        except BaseException:
            self._log.setLevel(self._log_level)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._controller.stop()
        finally:
            self._log.setLevel(self._log_level)


@dataclass(frozen=True)
class Hook:
    headers: dict[str, str]
    body: bytes
    verified: bool


class DemoWebhook:
    """An HTTP endpoint that verifies signatures and keeps every request."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.hooks: list[Hook] = []
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                endpoint.hooks.append(Hook(headers, body, endpoint.verify(body, headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError:
            return False
        return True

    def __enter__(self) -> DemoWebhook:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

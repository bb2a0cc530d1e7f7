"""Real receivers for delivery tests: an SMTP server and a webhook endpoint, both on 127.0.0.1.

    with SmtpCatcher(tls="starttls", users={"desk": "s3cret"}) as smtp:
        ...  # send to smtp.host, smtp.port, trusting smtp.client_context
        assert smtp.messages[0].data == rendered.body

    with WebhookCatcher(secret=SECRET) as hook:
        hook.script(answer(500), answer(429, headers={"Retry-After": "120"}), stall())
        ...  # POST to hook.url
        assert hook.requests[0].verified

`SmtpCatcher` is aiosmtpd's threaded `Controller` with optional STARTTLS or implicit TLS (a
throwaway certificate authority from `trustme`), optional AUTH, scripted refusals
(`fail_next("451 4.3.0 try later")`), and `stop()`/`start()` on the same port to play a
server that goes down and comes back. `WebhookCatcher` is a threaded stdlib HTTP server that
answers from a script (default 200), records every request, and checks Standard Webhooks
signatures with the `standardwebhooks` package, not with our code. Both shut down at once:
stalled requests wait on an event that closing sets.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HOST = "127.0.0.1"


@cache
def throwaway_ca() -> trustme.CA:
    """One certificate authority per test run (making keys is the slow part)."""
    return trustme.CA()


def client_context() -> ssl.SSLContext:
    """A client context that trusts the throwaway CA, and only it."""
    return ssl.create_default_context(cadata=throwaway_ca().cert_pem.bytes().decode())


@cache
def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    throwaway_ca().issue_cert(HOST, "localhost").configure_cert(context)
    return context


def _free_port() -> int:
    # The controller needs a real port up front (it connects to it to check it started),
    # and a restart must come back on the same one.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# SMTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as received (dot-stuffing undone)
    login: str | None  # the user that authenticated, if any
    tls: bool  # whether the session was encrypted (STARTTLS or implicit TLS)


class _SmtpHandler:
    """aiosmtpd handler hooks; runs in the controller's thread."""

    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.catcher._take("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.catcher._take("QUIT") or "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self.catcher._take("DATA")
        if refusal:
            return refusal
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.catcher._record(session, envelope, encrypted)
        return "250 Message accepted for delivery"


class SmtpCatcher:
    """A real SMTP server in a thread; see the module docstring."""

    def __init__(self, *, tls: str = "none", users: Mapping[str, str] | None = None) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError(f"tls must be none, starttls or tls, not {tls!r}")
        self.tls = tls
        self.users = dict(users or {})
        self.host = HOST
        self.port = _free_port()
        self.messages: list[ReceivedMail] = []
        self.client_context = client_context()
        self._refusals: dict[str, deque[str]] = {"RCPT": deque(), "DATA": deque(), "QUIT": deque()}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def fail_next(self, reply: str, *, stage: str = "DATA", times: int = 1) -> None:
        """Answer the next `times` RCPT, DATA or QUIT commands with `reply` ("550 5.1.1 ...")."""
        with self._lock:
            self._refusals[stage].extend([reply] * times)

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_SmtpHandler(self), **self._options())
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"hostname": HOST, "port": self.port, "ready_timeout": 10}
        if self.tls == "tls":
            options["ssl_context"] = _server_context()
        elif self.tls == "starttls":
            options.update(tls_context=_server_context(), require_starttls=True)
        if self.users:
            # aiosmtpd only counts STARTTLS as encryption: with implicit TLS (or none) it must
            # be told to offer AUTH anyway, and then it cannot also require AUTH without a
            # warning. Tests see who logged in from `ReceivedMail.login`.
            starttls = self.tls == "starttls"
            options.update(
                authenticator=self._authenticate,
                auth_required=starttls,
                auth_require_tls=starttls,
            )
        return options

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        if self.users.get(login) != password:
            return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535
        return AuthResult(success=True, auth_data=login)

    def _take(self, stage: str) -> str | None:
        with self._lock:
            queue = self._refusals[stage]
            return queue.popleft() if queue else None

    def _record(self, session: Session, envelope: Envelope, encrypted: bool) -> None:
        data = envelope.original_content or b""
        login = session.auth_data if isinstance(session.auth_data, str) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            login=login,
            tls=encrypted,
        )
        with self._lock:
            self.messages.append(mail)

    def __enter__(self) -> SmtpCatcher:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `stall` holds the request until the catcher closes."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: bool = False


def answer(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status=status, body=body, headers=dict(headers or {}))


def stall() -> Reply:
    return Reply(stall=True)


@dataclass(frozen=True)
class ReceivedHook:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    verified: bool | None  # None when the catcher has no secret to check with
    problem: str | None  # why verification failed


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer
    timeout = 10  # a client that sends half a request cannot hold a thread forever

    def do_POST(self) -> None:
        catcher = self.server.catcher
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified, problem = catcher._verify(body, headers)
        catcher._record(ReceivedHook("POST", self.path, headers, body, verified, problem))
        reply = catcher._next()
        if reply.stall:
            catcher.closing.wait()
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in {"Content-Length": str(len(reply.body)), **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads `requests`, not a log


class _HookServer(ThreadingHTTPServer):
    # Handler threads are joined on close, so none outlives the `with` block.
    daemon_threads = False

    def __init__(self, catcher: WebhookCatcher) -> None:
        super().__init__((HOST, 0), _HookHandler)
        self.catcher = catcher

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) is expected; the test sees it in `requests`.
        pass


class WebhookCatcher:
    """A real webhook endpoint in a thread; see the module docstring."""

    def __init__(self, *, secret: str | None = None) -> None:
        self.secret = secret
        self.requests: list[ReceivedHook] = []
        self.closing = threading.Event()
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server = _HookServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}{path}"

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests; once they are used up, requests get 200."""
        with self._lock:
            self._replies.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply()

    def _record(self, hook: ReceivedHook) -> None:
        with self._lock:
            self.requests.append(hook)
            self._arrived.notify_all()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until `count` requests have arrived (stalled ones included)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def _verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[bool | None, str | None]:
        if self.secret is None:
            return None, None
        try:
            Webhook(self.secret).verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as error:
            return False, str(error)
        return True, None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.closing.set()  # releases stalled requests first, so the joins below are quick
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> WebhookCatcher:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

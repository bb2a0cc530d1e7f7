"""Send a frozen email digest by SMTP, and say whether a failure is worth retrying.

The stdlib `smtplib` is the client: it is maintained with Python, handles STARTTLS, implicit
TLS and AUTH, and its blocking calls run in a worker thread so the event loop keeps going.
The stored bytes are sent as they are (smtplib only dot-stuffs them on the wire), so a retry
delivers the very message of the first attempt, Message-ID included.

Timeouts (`SmtpTimeouts`, from the receiver's one `timeout`): connecting (TCP, TLS and the
server's greeting), each command's reply, and the message itself (sent, then its final reply,
when servers scan it) each have their own, and a deadline bounds the whole session: a server
that accepts and never answers, or drips a byte just before each timeout, cannot hold a send
(and its thread) for longer. `abort_sends` cuts every session in flight (the service stopping).

Classification: the server saying "not now" (4xx replies, a dropped or refused connection, a
timeout, a TLS failure) is temporary; the server saying "no" (5xx: unknown user, bad
password) or a configuration the server cannot serve (no STARTTLS, no AUTH) is permanent.
Whatever the server echoes back (a refused AUTH line carries the password in base64) is
redacted from the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import socket
import ssl
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parseaddr
from typing import Any

from monitor.deliver.result import SendResult, echo_forms, one_line
from monitor.models import EmailReceiver, Rendered, SmtpServer

__all__ = ["SmtpTimeouts", "abort_sends", "send_email"]

# What each smtplib refusal means to the user, by exception class (most specific first).
_REFUSALS: tuple[tuple[type[smtplib.SMTPResponseException], str], ...] = (
    (smtplib.SMTPAuthenticationError, "login refused"),
    (smtplib.SMTPSenderRefused, "sender address refused"),
    (smtplib.SMTPDataError, "message refused"),
    (smtplib.SMTPConnectError, "connection refused by the server's greeting"),
    (smtplib.SMTPHeloError, "greeting (EHLO/HELO) refused"),
)


@dataclass(frozen=True)
class _Login:
    username: str
    password: str


class _Unset(Exception):
    """A variable the receiver names is missing from the environment."""


class _DataTimeout(TimeoutError):
    """No final reply to the message within the data timeout (the server may have it)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer to the message within {seconds:g} s")
        self.seconds = seconds


@dataclass(frozen=True)
class SmtpTimeouts:
    """Seconds each part of a session may take."""

    connect: float  # TCP connect, implicit TLS and the server's greeting
    command: float  # each reply: EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, QUIT
    data: float  # sending the message and waiting for its final reply
    total: float  # the whole session, however slowly the server answers

    @classmethod
    def of(cls, smtp: SmtpServer) -> SmtpTimeouts:
        # The final reply to a message may wait for the server's spam and virus scans, so it
        # gets twice a command's time; the whole session, with its half-dozen exchanges, four.
        t = smtp.timeout
        return cls(connect=t, command=t, data=2 * t, total=4 * t)


class _Deadline:
    """Cuts a session's connection when its time is up or `abort_sends` is called.

    A blocked read in the sending thread cannot be cancelled, but shutting its socket down
    from another thread ends it at once (the read sees the connection close).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reason: str | None = None  # why the session was cut, once it was
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.cut, args=("deadline",))
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _LIVE.add(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _LIVE.discard(self)

    def watch(self, sock: socket.socket) -> None:
        """The session's current socket (STARTTLS replaces it)."""
        with self._lock:
            self._sock = sock
        if self.reason is not None:
            self.cut(self.reason)

    def forget(self) -> None:
        """The session is closing its socket: a cut must not reach the descriptor after it
        is closed (the number may already belong to another file)."""
        with self._lock:
            self._sock = None

    def cut(self, reason: str) -> None:
        with self._lock:
            self.reason = self.reason or reason
            sock = self._sock
            if sock is None or sock.fileno() < 0:
                return
            # Through a duplicate of the descriptor: shutdown acts on the connection itself,
            # and the TLS object of the sending thread is left alone.
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(sock.fileno())) as dup:
                dup.shutdown(socket.SHUT_RDWR)


_LIVE: weakref.WeakSet[_Deadline] = weakref.WeakSet()


def abort_sends() -> None:
    """Cut every SMTP session in flight (the service is stopping). Their sends fail as
    temporary, so their digests go out again later; none is recorded as delivered."""
    for deadline in list(_LIVE):
        deadline.cut("stopping")


class _Session(smtplib.SMTP):
    """smtplib's client with the timeouts of `SmtpTimeouts` and a `_Deadline`."""

    def __init__(self, smtp: SmtpServer, times: SmtpTimeouts, deadline: _Deadline, **tls: Any):
        self._times, self._deadline = times, deadline
        super().__init__(smtp.host, smtp.port, timeout=times.connect, **tls)
        # Connected and greeted: from now on each reply has a command's time.
        self._set_timeout(times.command)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook (undeclared in the type stubs): the deadline watches the socket
        # from before the greeting is read.
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self._deadline.watch(sock)
        return sock

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        reply = super().starttls(*args, **kwargs)
        if self.sock is not None:
            self._deadline.watch(self.sock)  # the TLS socket replaced the plain one
        return reply

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._set_timeout(self._times.data)
        try:
            return super().data(msg)
        except (TimeoutError, smtplib.SMTPServerDisconnected) as error:
            # smtplib reports a read timeout as a disconnection; say which wait ran out.
            if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
                raise _DataTimeout(self._times.data) from error
            raise

    def close(self) -> None:
        self._deadline.forget()  # waits for a cut in progress, if any
        super().close()

    def _set_timeout(self, seconds: float) -> None:
        if self.sock is not None:
            self.sock.settimeout(seconds)


class _TlsSession(_Session, smtplib.SMTP_SSL):
    """`_Session` over implicit TLS (port 465)."""


async def send_email(
    rendered: Rendered,
    receiver: EmailReceiver,
    env: Mapping[str, str],
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> SendResult:
    """Send `rendered.body` to every `to` and `cc` address through `receiver.smtp`.

    `env` holds the variables the receiver names for its credentials. `ssl_context` replaces
    the system's default trust (tests use it to trust a test certificate authority).
    """
    if rendered.kind != "email":
        raise ValueError(f"digest {rendered.digest_id} is a {rendered.kind}, not an email")
    try:
        login = _login(receiver.smtp, env)
    except _Unset as error:
        return SendResult.permanent(_where(receiver.smtp) + str(error))
    context = ssl_context or ssl.create_default_context()
    return await asyncio.to_thread(_send, rendered.body, receiver, login, context)


def _login(smtp: SmtpServer, env: Mapping[str, str]) -> _Login | None:
    if not smtp.username_env:
        return None
    if not smtp.password_env:
        raise _Unset(f"username_env {smtp.username_env} is set but password_env is not")
    return _Login(_variable(env, smtp.username_env), _variable(env, smtp.password_env))


def _variable(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise _Unset(f"environment variable {name} is not set; set it where monitor runs")
    return value


def _send(
    body: bytes, receiver: EmailReceiver, login: _Login | None, context: ssl.SSLContext
) -> SendResult:
    secrets = echo_forms([login.username, login.password]) if login else []
    times = SmtpTimeouts.of(receiver.smtp)
    with _Deadline(times.total) as deadline:
        try:
            refused = _transact(body, receiver, login, context, deadline)
        except (smtplib.SMTPException, OSError) as error:
            result = _cut(deadline, receiver.smtp) or _classify(error, receiver.smtp)
            return replace(result, error=one_line(result.error or "", secrets))
    if refused:
        # Some recipients took it: resending would double it for them, so this is a success
        # that still tells the user who did not get it.
        return SendResult.sent(one_line(_where(receiver.smtp) + _refused(refused), secrets))
    return SendResult.sent()


def _cut(deadline: _Deadline, smtp: SmtpServer) -> SendResult | None:
    """The failure of a session `_Deadline` cut, or None when it was not cut."""
    if deadline.reason == "stopping":
        return SendResult.temporary(_where(smtp) + "interrupted: the service is stopping")
    if deadline.reason is not None:
        return SendResult.temporary(
            _where(smtp) + f"the session took longer than {deadline.seconds:g} s "
            "(the server answers too slowly); cut"
        )
    return None


def _transact(
    body: bytes,
    receiver: EmailReceiver,
    login: _Login | None,
    context: ssl.SSLContext,
    deadline: _Deadline,
) -> dict[str, tuple[int, bytes]]:
    smtp = receiver.smtp
    client = _connect(smtp, context, deadline)
    try:
        client.ehlo_or_helo_if_needed()
        if smtp.tls == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if login:
            client.login(login.username, login.password)
        recipients = [_address(a) for a in (*receiver.to, *receiver.cc)]
        sender = _address(receiver.sender)
        options = _mail_options(client, body, [sender, *recipients])
        refused = client.sendmail(sender, recipients, body, mail_options=options)
    except BaseException:
        client.close()  # no QUIT: the session is broken, and a silent server would stall it
        raise
    # The message is accepted once DATA got its 250: a failing QUIT (which `with` would
    # raise) must not turn that into a retry and a duplicate.
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.quit()
    client.close()
    return refused


def _connect(smtp: SmtpServer, context: ssl.SSLContext, deadline: _Deadline) -> smtplib.SMTP:
    times = SmtpTimeouts.of(smtp)
    if smtp.tls == "tls":
        return _TlsSession(smtp, times, deadline, context=context)
    if smtp.tls in ("none", "starttls"):
        return _Session(smtp, times, deadline)
    raise smtplib.SMTPNotSupportedError(f"unknown tls mode {smtp.tls!r}; use none, starttls or tls")


def _address(value: str) -> str:
    # The envelope takes a bare address; the file may hold "Desk <desk@example.org>".
    return parseaddr(value)[1] or value


def _mail_options(client: smtplib.SMTP, body: bytes, addresses: list[str]) -> list[str]:
    options = []
    if not body.isascii() and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not all(a.isascii() for a in addresses):
        # smtplib refuses (permanent) when the server cannot take non-ASCII addresses.
        options.append("SMTPUTF8")
    return options


def _classify(error: smtplib.SMTPException | OSError, smtp: SmtpServer) -> SendResult:
    where = _where(smtp)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        temporary = all(400 <= code < 500 for code, _ in error.recipients.values())
        return _result(temporary, where + _refused(error.recipients))
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(error, smtp)
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(
        error.__context__, TimeoutError
    ):
        # smtplib turns a read timeout into "disconnected"; the timeout is the useful part.
        return SendResult.temporary(where + _network(error.__context__, smtp))
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return SendResult.temporary(where + f"the server hung up ({error or 'no reason given'})")
    if isinstance(error, smtplib.SMTPNotSupportedError):
        # e.g. no STARTTLS or no AUTH offered: the settings ask for what this server lacks.
        reason = str(error).rstrip(".")
        return SendResult.permanent(where + f"{reason}; check the tls and username_env settings")
    if isinstance(error, smtplib.SMTPException):
        return SendResult.permanent(where + str(error))
    return SendResult.temporary(where + _network(error, smtp))


def _reply(error: smtplib.SMTPResponseException, smtp: SmtpServer) -> SendResult:
    what = next((text for kind, text in _REFUSALS if isinstance(error, kind)), "refused")
    text = _text(error.smtp_error)
    message = f"{_where(smtp)}{what}: {error.smtp_code} {text}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        message += f" (check the variables {smtp.username_env} and {smtp.password_env})"
    return _result(400 <= error.smtp_code < 500, message)


def _network(error: OSError, smtp: SmtpServer) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, _DataTimeout):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"no answer within {smtp.timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused; is the SMTP server running on that port?"
    return f"cannot talk to the server: {error}"


def _refused(recipients: Mapping[str, tuple[int, bytes | str]]) -> str:
    parts = [f"{addr} ({code} {_text(msg)})" for addr, (code, msg) in recipients.items()]
    return "recipients refused: " + ", ".join(parts)


def _result(temporary: bool, message: str) -> SendResult:
    return SendResult.temporary(message) if temporary else SendResult.permanent(message)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _where(smtp: SmtpServer) -> str:
    return f"SMTP {smtp.host}:{smtp.port}: "

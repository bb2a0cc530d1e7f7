"""Send a frozen email digest by SMTP, and say whether a failure is worth retrying.

The stdlib `smtplib` is the client: it is maintained with Python, handles STARTTLS, implicit
TLS and AUTH, and its blocking calls run in a worker thread so the event loop keeps going.
The stored bytes are sent as they are (smtplib only dot-stuffs them on the wire), so a retry
delivers the very message of the first attempt, Message-ID included.

Classification: the server saying "not now" (4xx replies, a dropped or refused connection, a
timeout, a TLS failure) is temporary; the server saying "no" (5xx: unknown user, bad
password) or a configuration the server cannot serve (no STARTTLS, no AUTH) is permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parseaddr

from monitor.deliver.result import SendResult, one_line
from monitor.models import EmailReceiver, Rendered, SmtpServer

__all__ = ["send_email"]

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
    secrets = (login.password,) if login else ()
    try:
        refused = _transact(body, receiver, login, context)
    except (smtplib.SMTPException, OSError) as error:
        result = _classify(error, receiver.smtp)
        return replace(result, error=one_line(result.error or "", secrets))
    if refused:
        # Some recipients took it: resending would double it for them, so this is a success
        # that still tells the user who did not get it.
        return SendResult.sent(one_line(_where(receiver.smtp) + _refused(refused), secrets))
    return SendResult.sent()


def _transact(
    body: bytes, receiver: EmailReceiver, login: _Login | None, context: ssl.SSLContext
) -> dict[str, tuple[int, bytes]]:
    smtp = receiver.smtp
    client = _connect(smtp, context)
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


def _connect(smtp: SmtpServer, context: ssl.SSLContext) -> smtplib.SMTP:
    if smtp.tls == "tls":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    if smtp.tls in ("none", "starttls"):
        return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
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

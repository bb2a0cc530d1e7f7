"""SMTP sends are bounded however a server misbehaves: each phase has its timeout, the whole
session a deadline, and a stopping service cuts a session at once. Whatever a server quotes
back of a login is redacted.

The servers are raw TCP servers on loopback (`tests/support/lineserver.py`) that speak just
enough SMTP to misbehave at one chosen point.
"""

from __future__ import annotations

import asyncio
import base64
import time

from monitor.deliver import send_email
from monitor.deliver.email import SmtpTimeouts, abort_sends
from monitor.deliver.result import REDACTED, echo_forms, one_line
from monitor.models import EmailReceiver, SmtpServer
from tests.deliver.test_deliver import ENV, PASSWORD, rendered_email
from tests.support.lineserver import LineServer, echoing_smtp, silent
from tests.support.receivers import HOST


def receiver(port: int, timeout: float, *, login: bool = False) -> EmailReceiver:
    smtp = SmtpServer(
        host=HOST,
        port=port,
        timeout=timeout,
        username_env="SMTP_USER" if login else None,
        password_env="SMTP_PASSWORD" if login else None,
    )
    return EmailReceiver(to=("desk@example.org",), sender="m@example.org", smtp=smtp)


async def dripping(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LineServer
) -> None:
    """Greets, then answers EHLO one byte every 0.4 s, forever: every read is in time."""
    writer.write(b"220 drip.invalid ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-")
    while True:
        await asyncio.sleep(0.4)
        writer.write(b"x")
        await writer.drain()


async def mute_after_data(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LineServer
) -> None:
    """A server that takes the whole message and then never gives its final reply."""
    writer.write(b"220 mute.invalid ESMTP\r\n")
    while line := await reader.readline():
        command = line.decode().strip().upper()
        if command.startswith(("EHLO", "HELO")):
            writer.write(b"250 mute.invalid\r\n")
        elif command == "DATA":
            writer.write(b"354 go ahead\r\n")
            while (await reader.readline()) not in (b".\r\n", b""):
                pass
            server.heard("message received")
            await server.closed()
        else:
            writer.write(b"250 ok\r\n")


def test_timeouts_follow_the_receivers_one_setting() -> None:
    assert SmtpTimeouts.of(SmtpServer(host="h", timeout=30)) == SmtpTimeouts(
        connect=30, command=30, data=60, total=120
    )


async def test_a_server_that_drips_is_cut_at_the_sessions_deadline() -> None:
    with LineServer(dripping) as drip:
        started = time.monotonic()
        result = await send_email(rendered_email(), receiver(drip.port, 1), ENV)
        took = time.monotonic() - started
    assert result.retry and not result.ok
    assert "the session took longer than 4 s" in (result.error or "")
    assert 4 <= took < 8, f"cut after {took:.1f} s"


async def test_the_final_reply_to_a_message_has_the_data_timeout() -> None:
    with LineServer(mute_after_data) as mute:
        started = time.monotonic()
        result = await send_email(rendered_email(), receiver(mute.port, 0.5), ENV)
        took = time.monotonic() - started
        heard = list(mute.lines)
    assert heard == ["message received"]
    assert result.retry and "no answer to the message within 1 s" in (result.error or "")
    assert 1 <= took < 2, f"gave up after {took:.1f} s (data timeout: 1 s, deadline: 2 s)"


async def test_stopping_cuts_a_session_in_flight_at_once() -> None:
    with LineServer(silent) as mute:
        send = asyncio.create_task(send_email(rendered_email(), receiver(mute.port, 30), ENV))
        while not mute.wait_for_connections(1, 0):
            await asyncio.sleep(0.02)
        started = time.monotonic()
        abort_sends()
        result = await asyncio.wait_for(send, 5)
        took = time.monotonic() - started
    assert result.retry and "interrupted: the service is stopping" in (result.error or "")
    assert took < 2


async def test_a_plain_login_quoted_back_is_redacted() -> None:
    with LineServer(echoing_smtp("PLAIN")) as echo:
        result = await send_email(rendered_email(), receiver(echo.port, 5, login=True), ENV)
        heard = "\n".join(echo.lines)
    plain = base64.b64encode(f"\0desk\0{PASSWORD}".encode()).decode()
    assert plain in heard  # the server did get the login it quoted
    assert not result.ok and not result.retry and "535" in (result.error or "")
    assert f"'AUTH PLAIN {REDACTED}'" in (result.error or "")
    assert plain not in (result.error or "") and PASSWORD not in (result.error or "")


def test_echo_forms_cover_login_and_plain_encodings() -> None:
    forms = echo_forms(["desk", PASSWORD])
    encoded = {base64.b64encode(s.encode()).decode() for s in ("desk", PASSWORD)}
    assert {"desk", PASSWORD} | encoded <= set(forms)
    assert base64.b64encode(f"\0desk\0{PASSWORD}".encode()).decode() in forms
    assert echo_forms(["ab"]) == ["ab"]  # too short for its base64 ("YWI=") to be a secret
    text = one_line(f"got {base64.b64encode(PASSWORD.encode()).decode()} and desk", forms)
    assert text == f"got {REDACTED} and {REDACTED}"

"""Delivery against real receivers: aiosmtpd (plain, STARTTLS, implicit TLS, AUTH) and a
threaded HTTP endpoint that checks Standard Webhooks signatures with `standardwebhooks`.

Each test states the outcome the outbox relies on: ok, retry (maybe with retry_after), or
permanent (maybe gone), with an error text that names what to fix and hides every secret.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from standardwebhooks import Webhook

from monitor.deliver import SendResult, send_email, send_webhook
from monitor.models import EmailReceiver, Rendered, SmtpServer, WebhookReceiver
from tests.support.receivers import HOST, SmtpCatcher, WebhookCatcher, answer, stall

PASSWORD = "correct-horse-battery"
SECRET = "whsec_" + base64.b64encode(b"a test key of thirty-two bytes!!").decode()
ENV = {"SMTP_USER": "desk", "SMTP_PASSWORD": PASSWORD, "HOOK_SECRET": SECRET}
JSON = '{"version": 1, "digest": "d-42", "items": [{"title": "台湾海峡で演習"}]}'


def rendered_email(digest_id: str = "d-42") -> Rendered:
    """A UTF-8 multipart digest like the renderer's, with a line that needs dot-stuffing."""
    message = EmailMessage()
    message["Subject"] = "2 alerts: 台湾海峡 drills"
    message["From"] = "Monitor <monitor@example.org>"
    message["To"] = "Desk <desk@example.org>"
    message["Message-ID"] = f"<{digest_id}@monitor.invalid>"
    message.set_content("台湾海峡で演習\n.leading dot survives\n")
    message.add_alternative("<p>台湾海峡で演習</p><p>.leading dot</p>\n", subtype="html")
    body = message.as_bytes(policy=email.policy.SMTP)
    return Rendered(digest_id, "email", body, str(message["Subject"]), "message/rfc822")


def rendered_hook(digest_id: str = "d-42") -> Rendered:
    return Rendered(digest_id, "webhook", JSON.encode(), "2 alerts", "application/json")


def mailbox(smtp: SmtpCatcher, *, tls: str = "none", auth: bool = False) -> EmailReceiver:
    server = SmtpServer(
        host=smtp.host,
        port=smtp.port,
        tls=tls,
        username_env="SMTP_USER" if auth else None,
        password_env="SMTP_PASSWORD" if auth else None,
        timeout=5,
    )
    return EmailReceiver(
        to=("Desk <desk@example.org>",), cc=("chief@example.org",),
        sender="Monitor <monitor@example.org>", smtp=server,
    )  # fmt: skip


def endpoint(url: str, *, secret: bool = True, timeout: float = 5) -> WebhookReceiver:
    return WebhookReceiver(
        url=url,
        secret_env="HOOK_SECRET" if secret else None,
        headers={"X-Desk": "asia", "Content-Type": "text/plain"},
        timeout=timeout,
    )


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    with SmtpCatcher() as catcher:
        yield catcher


@pytest.fixture
def hook() -> Iterator[WebhookCatcher]:
    with WebhookCatcher(secret=SECRET) as catcher:
        yield catcher


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def assert_temporary(result: SendResult, *words: str) -> None:
    assert (result.ok, result.retry, result.gone) == (False, True, False), result
    assert result.error is not None and "\n" not in result.error
    for word in words:
        assert word in result.error


def assert_permanent(result: SendResult, *words: str, gone: bool = False) -> None:
    assert (result.ok, result.retry, result.gone) == (False, False, gone), result
    assert result.error is not None and "\n" not in result.error
    for word in words:
        assert word in result.error


# Email -----------------------------------------------------------------------------------


async def test_email_arrives_byte_identical_with_both_parts(smtp: SmtpCatcher) -> None:
    rendered = rendered_email()
    result = await send_email(rendered, mailbox(smtp), ENV)
    assert result == SendResult(ok=True, retry=False, error=None)
    [mail] = smtp.messages
    assert mail.data == rendered.body
    assert mail.mail_from == "monitor@example.org"
    assert mail.rcpt_tos == ("desk@example.org", "chief@example.org")
    parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert parsed["Subject"] == "2 alerts: 台湾海峡 drills"
    assert parsed["Message-ID"] == "<d-42@monitor.invalid>"
    assert isinstance(parsed, EmailMessage)
    plain, html = (parsed.get_body((kind,)) for kind in ("plain", "html"))
    assert plain is not None and html is not None
    assert plain.get_content().splitlines() == ["台湾海峡で演習", ".leading dot survives"]
    assert "<p>.leading dot</p>" in html.get_content()


async def test_8bit_body_and_utf8_address_arrive_unchanged(smtp: SmtpCatcher) -> None:
    # Raw UTF-8 in the body needs BODY=8BITMIME, a non-ASCII address needs SMTPUTF8.
    message = EmailMessage()
    message["Subject"] = "북한 미사일"
    message.set_content("북한의 미사일 발사\n", cte="8bit")
    body = message.as_bytes(policy=email.policy.SMTP)
    rendered = Rendered("d-8", "email", body, "북한 미사일", "message/rfc822")
    receiver = replace(mailbox(smtp), to=("데스크@example.kr",), cc=())
    result = await send_email(rendered, receiver, ENV)
    assert result.ok, result.error
    [mail] = smtp.messages
    assert (mail.data, mail.rcpt_tos) == (body, ("데스크@example.kr",))


async def test_email_starttls_with_login() -> None:
    with SmtpCatcher(tls="starttls", users={"desk": PASSWORD}) as smtp:
        receiver = mailbox(smtp, tls="starttls", auth=True)
        result = await send_email(rendered_email(), receiver, ENV, ssl_context=smtp.client_context)
    assert result.ok, result.error
    [mail] = smtp.messages
    assert (mail.tls, mail.login) == (True, "desk")


async def test_email_implicit_tls_with_login() -> None:
    with SmtpCatcher(tls="tls", users={"desk": PASSWORD}) as smtp:
        receiver = mailbox(smtp, tls="tls", auth=True)
        result = await send_email(rendered_email(), receiver, ENV, ssl_context=smtp.client_context)
    assert result.ok, result.error
    assert [(m.tls, m.login) for m in smtp.messages] == [(True, "desk")]


async def test_wrong_password_is_permanent_and_never_shown() -> None:
    with SmtpCatcher(tls="starttls", users={"desk": "another-password"}) as smtp:
        receiver = mailbox(smtp, tls="starttls", auth=True)
        result = await send_email(rendered_email(), receiver, ENV, ssl_context=smtp.client_context)
    assert_permanent(result, "535", "SMTP_USER", "SMTP_PASSWORD", f"{HOST}:{smtp.port}")
    assert PASSWORD not in (result.error or "")
    assert smtp.messages == []


async def test_unset_password_variable_is_permanent_and_named(smtp: SmtpCatcher) -> None:
    env = {"SMTP_USER": "desk"}
    result = await send_email(rendered_email(), mailbox(smtp, auth=True), env)
    assert_permanent(result, "SMTP_PASSWORD", "not set")
    assert smtp.messages == []


async def test_untrusted_certificate_is_retried_with_reason() -> None:
    with SmtpCatcher(tls="starttls") as smtp:
        # The system's trust store does not know the throwaway CA.
        result = await send_email(rendered_email(), mailbox(smtp, tls="starttls"), ENV)
    assert_temporary(result, "certificate")
    assert smtp.messages == []


async def test_starttls_asked_of_a_server_without_it_is_permanent(smtp: SmtpCatcher) -> None:
    result = await send_email(rendered_email(), mailbox(smtp, tls="starttls"), ENV)
    assert_permanent(result, "STARTTLS")


async def test_451_is_retried_and_the_resend_is_identical(smtp: SmtpCatcher) -> None:
    smtp.fail_next("451 4.3.0 mailbox busy, try later")
    rendered = rendered_email()
    first = await send_email(rendered, mailbox(smtp), ENV)
    assert_temporary(first, "451", "try later")
    assert smtp.messages == []
    second = await send_email(rendered, mailbox(smtp), ENV)
    assert second.ok
    assert [m.data for m in smtp.messages] == [rendered.body]


async def test_a_password_echoed_by_the_server_is_hidden() -> None:
    with SmtpCatcher(users={"desk": PASSWORD}) as smtp:
        smtp.fail_next(f"451 4.7.0 {PASSWORD} rejected")
        result = await send_email(rendered_email(), mailbox(smtp, auth=True), ENV)
    assert_temporary(result, "451", "[redacted] rejected")
    assert PASSWORD not in (result.error or "")
    assert smtp.messages == []


async def test_a_failing_quit_after_acceptance_is_still_sent(smtp: SmtpCatcher) -> None:
    # The server has the message; calling this a failure would make the outbox resend it.
    smtp.fail_next("554 5.0.0 oops", stage="QUIT")
    result = await send_email(rendered_email(), mailbox(smtp), ENV)
    assert result == SendResult(ok=True, retry=False, error=None)
    assert len(smtp.messages) == 1


async def test_550_for_every_recipient_is_permanent(smtp: SmtpCatcher) -> None:
    smtp.fail_next("550 5.1.1 no such user", stage="RCPT", times=2)
    result = await send_email(rendered_email(), mailbox(smtp), ENV)
    assert_permanent(result, "550", "desk@example.org", "no such user")
    assert smtp.messages == []


async def test_one_refused_recipient_still_counts_as_sent(smtp: SmtpCatcher) -> None:
    # The other recipient has the message: a retry would give it to them twice.
    smtp.fail_next("550 5.1.1 no such user", stage="RCPT")
    result = await send_email(rendered_email(), mailbox(smtp), ENV)
    assert result.ok and not result.retry
    assert result.error is not None and "desk@example.org" in result.error
    assert [m.rcpt_tos for m in smtp.messages] == [("chief@example.org",)]


async def test_server_down_then_up(smtp: SmtpCatcher) -> None:
    smtp.stop()
    down = await send_email(rendered_email(), mailbox(smtp), ENV)
    assert_temporary(down, "connection refused")
    smtp.start()
    up = await send_email(rendered_email(), mailbox(smtp), ENV)
    assert up.ok
    assert len(smtp.messages) == 1


async def test_silent_server_times_out_and_is_retried() -> None:
    # A socket that listens but never accepts: the connection opens, no greeting ever comes.
    with socket.socket() as mute:
        mute.bind((HOST, 0))
        mute.listen()
        server = SmtpServer(host=HOST, port=mute.getsockname()[1], timeout=0.3)
        receiver = EmailReceiver(to=("desk@example.org",), sender="m@example.org", smtp=server)
        result = await send_email(rendered_email(), receiver, ENV)
    assert_temporary(result, "no answer within 0.3 s")


# Webhook ---------------------------------------------------------------------------------


async def test_webhook_signed_and_verified_by_standardwebhooks(hook: WebhookCatcher) -> None:
    rendered = rendered_hook()
    result = await send_webhook(rendered, endpoint(hook.url), ENV)
    assert result == SendResult(ok=True, retry=False, error=None)
    [request] = hook.requests
    assert (request.verified, request.problem) == (True, None)
    assert request.body == rendered.body
    assert request.headers["webhook-id"] == "d-42"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-desk"] == "asia"
    assert request.headers["user-agent"].startswith("monitor/")
    assert request.headers["webhook-signature"].startswith("v1,")


async def test_signature_covers_the_given_time(hook: WebhookCatcher) -> None:
    then = datetime(2024, 5, 1, 9, 30, 15, 999_000, tzinfo=UTC)
    await send_webhook(rendered_hook(), endpoint(hook.url), ENV, now=then)
    [request] = hook.requests
    assert request.headers["webhook-timestamp"] == str(int(then.timestamp()))
    # Too old for a receiver to accept, which proves the signature is not over "now".
    assert (request.verified, request.problem) == (False, "Message timestamp too old")
    expected = Webhook(SECRET).sign("d-42", then.replace(microsecond=0), JSON)
    assert request.headers["webhook-signature"] == expected


async def test_retry_resends_the_same_bytes_and_id(hook: WebhookCatcher) -> None:
    hook.script(answer(500))
    rendered = rendered_hook()
    assert (await send_webhook(rendered, endpoint(hook.url), ENV)).retry
    assert (await send_webhook(rendered, endpoint(hook.url), ENV)).ok
    assert len({(r.body, r.headers["webhook-id"]) for r in hook.requests}) == 1
    assert [r.verified for r in hook.requests] == [True, True]


async def test_unsigned_webhook_has_no_signature() -> None:
    with WebhookCatcher() as hook:
        result = await send_webhook(rendered_hook(), endpoint(hook.url, secret=False), {})
    assert result.ok
    [request] = hook.requests
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == "d-42"
    assert request.verified is None


async def test_unset_secret_variable_is_permanent_and_nothing_is_sent(
    hook: WebhookCatcher,
) -> None:
    result = await send_webhook(rendered_hook(), endpoint(hook.url), {})
    assert_permanent(result, "HOOK_SECRET", "not set")
    assert hook.requests == []


async def test_malformed_secret_is_permanent(hook: WebhookCatcher) -> None:
    result = await send_webhook(rendered_hook(), endpoint(hook.url), {"HOOK_SECRET": "whsec_!"})
    assert_permanent(result, "HOOK_SECRET", "whsec_")
    assert hook.requests == []


async def test_500_is_retried_with_the_servers_words(hook: WebhookCatcher) -> None:
    hook.script(answer(500, b"database\nis down"))
    result = await send_webhook(rendered_hook(), endpoint(hook.url), ENV)
    assert_temporary(result, "HTTP 500: database is down", HOST)
    assert result.retry_after is None


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_throttled_is_retried_after_what_the_server_asks(
    hook: WebhookCatcher, status: int
) -> None:
    hook.script(answer(status, headers={"Retry-After": "120"}))
    result = await send_webhook(rendered_hook(), endpoint(hook.url), ENV)
    assert_temporary(result, f"HTTP {status}")
    assert result.retry_after == timedelta(seconds=120)


async def test_410_is_permanent_and_gone(hook: WebhookCatcher) -> None:
    hook.script(answer(410))
    result = await send_webhook(rendered_hook(), endpoint(hook.url), ENV)
    assert_permanent(result, "HTTP 410", "disabled", gone=True)


async def test_400_is_permanent(hook: WebhookCatcher) -> None:
    hook.script(answer(400, b"invalid_payload"))
    result = await send_webhook(rendered_hook(), endpoint(hook.url), ENV)
    assert_permanent(result, "HTTP 400: invalid_payload")


async def test_stall_times_out_and_is_retried(hook: WebhookCatcher) -> None:
    hook.script(stall())
    result = await send_webhook(rendered_hook(), endpoint(hook.url, timeout=0.3), ENV)
    assert_temporary(result, "no answer within 0.3 s")
    assert len(hook.requests) == 1


async def test_refused_connection_is_retried() -> None:
    url = f"http://{HOST}:{unused_port()}/hook"
    result = await send_webhook(rendered_hook(), endpoint(url), ENV)
    assert_temporary(result, "cannot connect")


async def test_redirect_is_not_followed_even_by_a_following_client(
    hook: WebhookCatcher,
) -> None:
    moved = hook.url_for("/new-hook?token=abc")
    hook.script(answer(307, headers={"Location": moved}))
    async with httpx.AsyncClient(follow_redirects=True) as client:
        result = await send_webhook(rendered_hook(), endpoint(hook.url), ENV, client=client)
        assert not client.is_closed  # a caller's client is the caller's to close
    assert_permanent(result, "HTTP 307", hook.url_for("/new-hook"), "channels.yaml")
    assert "token" not in (result.error or "")
    assert [r.path for r in hook.requests] == ["/hook"]


async def test_bad_url_is_permanent() -> None:
    result = await send_webhook(rendered_hook(), endpoint("ftp://example.org/x"), ENV)
    assert_permanent(result, "bad URL")


async def test_echoed_secrets_never_reach_the_error(hook: WebhookCatcher) -> None:
    # A Slack-style URL is a secret in itself; a server may echo it, or the key, back.
    url = hook.url_for("/services/T000/B000/s3cr3tT0ken")
    hook.script(answer(400, f"bad request to {url} signed with {SECRET}".encode()))
    result = await send_webhook(rendered_hook(), endpoint(url), ENV)
    assert_permanent(result, "HTTP 400", "[redacted]")
    assert "s3cr3tT0ken" not in (result.error or "")
    assert SECRET not in (result.error or "")


async def test_non_ascii_header_is_permanent(hook: WebhookCatcher) -> None:
    receiver = replace(endpoint(hook.url), headers={"X-Desk": "台湾"})
    result = await send_webhook(rendered_hook(), receiver, ENV)
    assert_permanent(result, "not ASCII")
    assert hook.requests == []


async def test_a_wrong_kind_is_a_programming_error(hook: WebhookCatcher) -> None:
    with pytest.raises(ValueError, match="not a webhook"):
        await send_webhook(rendered_email(), endpoint(hook.url), ENV)

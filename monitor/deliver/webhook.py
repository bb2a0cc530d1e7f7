"""POST a frozen webhook digest, signed per Standard Webhooks, and classify the answer.

Signing uses the `standardwebhooks` package (the reference implementation receivers verify
with) instead of our own HMAC code. The signed content is `{id}.{timestamp}.{body}`, with
`webhook-id` the digest id, so a receiver can drop a retry it has already processed.

Answers: 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are worth a retry
(honouring Retry-After); 410 means the endpoint is gone for good (the outbox disables the
receiver); any other 4xx, and any redirect, is permanent: resending would get the same answer.
Redirects are not followed because a POST replayed to another address is a surprise, and a
moved endpoint is a configuration change the user should make.

Errors name the URL's host, never its path: a Slack-style URL carries its token in the path.
"""

from __future__ import annotations

import asyncio
import binascii
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import SplitResult, urlsplit

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from monitor.backoff import parse_retry_after
from monitor.deliver.result import SendResult, one_line
from monitor.models import USER_AGENT, Rendered, WebhookReceiver

__all__ = ["send_webhook"]

RETRYABLE = frozenset({408, 429})
SNIPPET = 2048  # bytes of an error answer worth showing; the rest is not read


class _BadSecret(Exception):
    pass


async def send_webhook(
    rendered: Rendered,
    receiver: WebhookReceiver,
    env: Mapping[str, str],
    *,
    now: datetime | None = None,
    client: httpx.AsyncClient | None = None,
) -> SendResult:
    """POST `rendered.body` to `receiver.url`; sign it when the receiver names a secret.

    `now` is the signing time (default: the clock). `client` lets a caller share one
    connection pool; without it a client is opened for this one request.
    """
    if rendered.kind != "webhook":
        raise ValueError(f"digest {rendered.digest_id} is a {rendered.kind}, not a webhook")
    secret = env.get(receiver.secret_env, "") if receiver.secret_env else ""
    try:
        headers = _headers(rendered, receiver, secret, now or datetime.now(UTC))
    except _BadSecret as error:
        return SendResult.permanent(_where(receiver) + str(error))
    except UnicodeEncodeError:
        # HTTP header values are ASCII; the value itself is not shown, it may be a token.
        return SendResult.permanent(
            _where(receiver) + "a header value is not ASCII; fix the receiver's headers"
        )
    try:
        result = await _post(rendered.body, headers, receiver, client)
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as error:
        result = _failure(error, receiver)
    # One place hides secrets from every error, whatever the server echoed back.
    if result.error is None:
        return result
    return replace(result, error=one_line(result.error, _secrets(receiver, secret)))


def _headers(
    rendered: Rendered, receiver: WebhookReceiver, secret: str, now: datetime
) -> httpx.Headers:
    # The receiver's own headers first: ours overwrite them (case-insensitively), so a file
    # cannot break the signature or the content type by accident.
    headers = httpx.Headers(dict(receiver.headers))
    headers["Content-Type"] = rendered.content_type or "application/json"
    headers["User-Agent"] = USER_AGENT
    headers["webhook-id"] = rendered.digest_id
    # The header carries whole seconds, so the signature must be over the same whole second.
    stamp = datetime.fromtimestamp(math.floor(now.timestamp()), UTC)
    headers["webhook-timestamp"] = str(int(stamp.timestamp()))
    if receiver.secret_env:
        headers["webhook-signature"] = _sign(rendered, receiver.secret_env, secret, stamp)
    return headers


def _sign(rendered: Rendered, variable: str, secret: str, stamp: datetime) -> str:
    if not secret:
        raise _BadSecret(f"environment variable {variable} is not set; set it where monitor runs")
    try:
        signer = Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as error:
        raise _BadSecret(
            f"environment variable {variable} is not a Standard Webhooks secret "
            "(expected whsec_ followed by base64)"
        ) from error
    try:
        text = rendered.body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _BadSecret(f"digest {rendered.digest_id} body is not UTF-8") from error
    return signer.sign(rendered.digest_id, stamp, text)


async def _post(
    body: bytes,
    headers: httpx.Headers,
    receiver: WebhookReceiver,
    client: httpx.AsyncClient | None,
) -> SendResult:
    # httpx's timeout bounds each read; the overall deadline also stops a server that drips.
    async with asyncio.timeout(receiver.timeout):
        if client is not None:
            return await _exchange(client, body, headers, receiver)
        async with httpx.AsyncClient(timeout=receiver.timeout) as own:
            return await _exchange(own, body, headers, receiver)


async def _exchange(
    client: httpx.AsyncClient, body: bytes, headers: httpx.Headers, receiver: WebhookReceiver
) -> SendResult:
    request = client.build_request(
        "POST", receiver.url, content=body, headers=headers, timeout=receiver.timeout
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        snippet = b"" if response.is_success else await _snippet(response)
    finally:
        await response.aclose()
    return _answer(response, snippet, receiver)


async def _snippet(response: httpx.Response) -> bytes:
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= SNIPPET:
            break
    return data[:SNIPPET]


def _answer(response: httpx.Response, snippet: bytes, receiver: WebhookReceiver) -> SendResult:
    status = response.status_code
    if response.is_success:
        return SendResult.sent()
    text = snippet.decode("utf-8", "replace").strip()
    said = f"{_where(receiver)}HTTP {status}" + (f": {text}" if text else "")
    if status == 410:
        return SendResult.permanent(said + " (the endpoint is gone; receiver disabled)", gone=True)
    if status in RETRYABLE or status >= 500:
        return SendResult.temporary(said, parse_retry_after(response.headers.get("Retry-After")))
    if response.is_redirect:
        return SendResult.permanent(_moved(response, receiver))
    return SendResult.permanent(said)


def _moved(response: httpx.Response, receiver: WebhookReceiver) -> str:
    location = response.headers.get("Location", "")
    # Drop the query and any user:password@ from what we show; keep enough to fix the file.
    parts = urlsplit(str(response.url.join(location))) if location else None
    shown = _bare(parts) if parts else "(no Location)"
    return (
        f"{_where(receiver)}HTTP {response.status_code} redirects to {shown}; "
        "redirects are not followed, put the new address in channels.yaml"
    )


def _bare(parts: SplitResult) -> str:
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _failure(
    error: httpx.HTTPError | httpx.InvalidURL | TimeoutError, receiver: WebhookReceiver
) -> SendResult:
    where = _where(receiver)
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return SendResult.permanent(f"{where}bad URL ({error}); fix it in channels.yaml")
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return SendResult.temporary(f"{where}no answer within {receiver.timeout:g} s")
    if isinstance(error, httpx.ConnectError):
        return SendResult.temporary(f"{where}cannot connect ({error})")
    return SendResult.temporary(f"{where}{type(error).__name__}: {error}")


def _secrets(receiver: WebhookReceiver, secret: str) -> list[str]:
    # The URL path may be the token itself (Slack), and a server may echo what it got.
    path = urlsplit(receiver.url).path
    return [secret, path] if len(path) > 1 else [secret]


def _where(receiver: WebhookReceiver) -> str:
    parts = urlsplit(receiver.url)
    if not parts.hostname:
        return "webhook (URL without a host): "
    return f"webhook {parts.hostname}{f':{parts.port}' if parts.port else ''}: "

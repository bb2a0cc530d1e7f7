"""Delivery: the only part of monitor that sends anything out (SMTP and webhook POSTs).

Each sender takes a frozen `Rendered` digest and sends its stored bytes unchanged, so a retry
is byte-identical. It never raises for a failed send: it returns a `SendResult` saying whether
the failure is temporary (retry, maybe after `retry_after`) or permanent, in one line a user
can act on and that never contains a secret. Scheduling retries is the outbox's job.

    result = await send_email(rendered, receiver.email, os.environ)
    result = await send_webhook(rendered, receiver.webhook, os.environ)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.lazy import exports

if TYPE_CHECKING:
    from monitor.deliver.email import send_email
    from monitor.deliver.result import SendResult
    from monitor.deliver.webhook import send_webhook

__all__ = ["SendResult", "send_email", "send_webhook"]
# Loaded on first use: the log redaction reads `deliver.result`, and must not bring in the
# SMTP and HTTP clients with it (every CLI command logs).
__getattr__ = exports(
    __name__, {"SendResult": "result", "send_email": "email", "send_webhook": "webhook"}
)

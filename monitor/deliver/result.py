"""What one send attempt came to: the outbox records it and decides what happens next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["SendResult", "one_line"]

MAX_ERROR = 300  # an error is one line in `monitor status`; a server's essay is cut


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt to hand a frozen digest to a server.

    `retry` is False for permanent failures (the outbox moves the digest to dead at once);
    `gone` is True only when a webhook answered 410, and the outbox then disables the receiver.
    `error` can be set on success too: an email some recipients refused was still delivered
    to the others, so it must not be resent, but the user should hear who missed it.
    """

    ok: bool
    retry: bool
    error: str | None  # one line a user can act on, never containing a secret
    retry_after: timedelta | None = None  # the server's Retry-After, when it gave one
    gone: bool = False

    @classmethod
    def sent(cls, note: str | None = None) -> SendResult:
        return cls(ok=True, retry=False, error=note)

    @classmethod
    def temporary(cls, error: str, retry_after: timedelta | None = None) -> SendResult:
        return cls(ok=False, retry=True, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, error: str, *, gone: bool = False) -> SendResult:
        return cls(ok=False, retry=False, error=error, gone=gone)


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """Collapse whitespace, hide every secret, and cut to a length `monitor status` can show."""
    for secret in secrets:
        # Short values would blank out ordinary words; nobody uses a 3-character password.
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."

"""What one send attempt came to: the outbox records it and decides what happens next."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from itertools import permutations

__all__ = ["REDACTED", "SendResult", "echo_forms", "one_line"]

MAX_ERROR = 300  # an error is one line in `monitor status`; a server's essay is cut
REDACTED = "[redacted]"  # the same mark the logs use, so a reader learns one word


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


def echo_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as a server may quote it back: as is, and in the base64 that SMTP AUTH
    sends (LOGIN sends each value alone, PLAIN sends "\\0user\\0password"; a server refusing
    a login may echo the line it got). Pairs are taken both ways round: a caller that only
    knows the values cannot tell the user name from the password."""
    values = sorted({s for s in secrets if s})
    pairs = [f"\0{user}\0{password}" for user, password in permutations(values, 2)]
    encoded = [_b64(text) for text in (*values, *pairs)]
    # Base64 of a short value is short too: keep only forms long enough to be a secret.
    return [*values, *(e for e in encoded if len(e.rstrip("=")) >= 4)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """Collapse whitespace, hide every secret, and cut to a length `monitor status` can show."""
    # Longest first, so a form containing another is hidden whole.
    for secret in sorted(set(secrets), key=len, reverse=True):
        # Short values would blank out ordinary words; nobody uses a 3-character password.
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."

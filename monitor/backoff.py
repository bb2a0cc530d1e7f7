"""When to try again after a failure: exponential backoff with jitter, and Retry-After.

Its own module because it is timing policy, not HTTP, and has callers beyond the fetcher:
`poll` spaces out a failing feed's polls and `dispatch` a failed send's retries with
`retry_delay`; `fetch` and the webhook sender read a server's Retry-After header with
`parse_retry_after`. Nothing here makes a request.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["parse_retry_after", "retry_delay"]

MAX_DELAY = timedelta(hours=24)
MIN_BACKOFF = timedelta(minutes=1)
_RNG = random.Random()


def retry_delay(
    consecutive_errors: int,
    interval: timedelta,
    retry_after: timedelta | None,
    rng: random.Random | None = None,
) -> timedelta:
    """How long to wait before polling a failing feed again.

    Exponential backoff with "equal jitter": after n errors the wait is uniform in
    [c/2, c], c = b * 2**n capped at 24 h, where b is the feed's interval (at least a minute),
    and never under b: a failing feed is never polled more often than a healthy one, and
    feeds that failed together (one host down) spread out. Retry-After is a floor (capped too).
    """
    base = max(interval, MIN_BACKOFF)
    if consecutive_errors <= 0:
        delay = interval
    else:
        # A minute * 2**11 is already past the cap; clamping the exponent avoids overflow.
        ceiling = min(base * 2 ** min(consecutive_errors, 12), MAX_DELAY)
        low = min(max(ceiling / 2, base), ceiling)
        seconds = (rng or _RNG).uniform(low.total_seconds(), ceiling.total_seconds())
        delay = timedelta(seconds=seconds)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """Parse a Retry-After header (delay in seconds or an HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - (now or datetime.now(UTC)), timedelta(0))

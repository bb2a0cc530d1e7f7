"""What a server's refusal means for a feed, in words a user can act on: the message of an
HTTP status that is not a success, and of a body over the size limit. No HTTP library here:
`fetch` reads the response and passes what these need.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from monitor.errors import FetchError

__all__ = ["STATUS_HINTS", "THROTTLED", "status_message", "too_big"]

THROTTLED = frozenset({429, 503})  # their Retry-After is honoured
STATUS_HINTS: Mapping[int, str] = {
    401: "the feed needs a login: name it in feeds.yaml with username_env and password_env",
    403: "the server refuses access; check the URL or ask the site for a feed",
    404: "check the feed URL",
}


def status_message(code: int, reason: str, retry_after: timedelta | None) -> str:
    """The error line of an HTTP status (`reason`: its phrase, which httpx gives as the
    server sent it or, when the server sent none, the standard one)."""
    text = f"HTTP {code} {reason}".strip()
    if code == 410:
        return f"{text}: the feed was removed; it will not be polled again until re-added"
    if code in THROTTLED:
        wait = f"{retry_after.total_seconds():g} s" if retry_after is not None else "a while"
        return f"{text}; the server asks to wait {wait} before trying again"
    if code in STATUS_HINTS:
        return f"{text}; {STATUS_HINTS[code]}"
    if code >= 500:
        return f"{text}; the server has a problem, monitor will retry later"
    return text


def too_big(feed_id: str, cap: int, why: str) -> FetchError:
    return FetchError(
        f"the response is larger than the {cap:,}-byte limit ({why})",
        feed_id=feed_id,
        hint="check the URL is a feed, or raise max_body_bytes in the settings",
    )

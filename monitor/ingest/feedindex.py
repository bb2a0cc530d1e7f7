"""The ids and URLs of the feeds in a feeds file, so that `FeedsFile` checks a new feed against
all the others with two dict lookups.

Comparing each added feed with every feed already listed made `monitor feeds import` of 10,000
feeds take 17 minutes (the square of the count); with the index every edit is linear.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from monitor.ingest.feedcheck import url_key
from monitor.models import Feed


class FeedIndex:
    """Feeds by id and by `url_key`, the first one in file order for each."""

    def __init__(self, feeds: Iterable[Feed] = ()) -> None:
        self._by_id: dict[str, tuple[int, Feed]] = {}  # value: (place in the file, feed)
        self._by_url: dict[str, tuple[int, Feed]] = {}
        self._count = 0
        self.extend(feeds)

    def extend(self, feeds: Iterable[Feed]) -> None:
        """Index `feeds`, which come after those indexed so far."""
        for feed in feeds:
            place = (self._count, feed)
            self._count += 1
            self._by_id.setdefault(feed.id, place)
            self._by_url.setdefault(url_key(feed.url), place)

    @property
    def ids(self) -> Collection[str]:
        return self._by_id.keys()

    def with_id(self, feed_id: str) -> Feed | None:
        found = self._by_id.get(feed_id)
        return None if found is None else found[1]

    def has_url(self, url: str) -> bool:
        return url_key(url) in self._by_url

    def clash(self, new: Feed) -> Feed | None:
        """The feed first in the file with `new`'s id or URL, as a scan would find it."""
        found = [c for c in (self._by_id.get(new.id), self._by_url.get(url_key(new.url))) if c]
        return min(found, key=lambda clash: clash[0])[1] if found else None

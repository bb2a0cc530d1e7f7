"""What each feed's last stored body held, so that its next body's known items are not
tagged, matched and read again.

A feed that changes sends its whole body again with one or two new items; the store keeps
the new and edited ones only, so tagging, matching and reading the others was wasted: most
of a worker's time in a service's steady state. The cycle's process remembers, per feed, a
fingerprint of each item of the body it last stored (its guid and content hash: an edit
changes the hash); the worker that polls the feed next skips the items it is told are known.

Only an optimisation: a skipped item the store finds new after all (retention deleted it,
another instance polled the feed, the remembered save was of an older body) is tagged and
matched by the cycle's process as it is stored, and its story read is made when it is
linked. The memory is the service's (`Parser` keeps it across cycles); `monitor poll` starts
without it. Bounded: `FEEDS_KEPT` feeds, 8 bytes an item.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable

from monitor.models import Item

__all__ = ["FEEDS_KEPT", "KnownItems", "fingerprint", "fingerprints"]

FEEDS_KEPT = 20_000  # ~300 bytes a feed of 30 items
_SIZE = 8  # bytes of a fingerprint: a collision skips one item's tagging, once, by 1 in 2**64


def fingerprint(item: Item) -> bytes:
    key = f"{item.guid}\x00{item.content_hash}".encode()
    return hashlib.blake2b(key, digest_size=_SIZE).digest()


def fingerprints(packed: bytes) -> frozenset[bytes]:
    """The fingerprints in what `KnownItems.of` gives (one bytes string, as it travels)."""
    return frozenset(packed[i : i + _SIZE] for i in range(0, len(packed), _SIZE))


class KnownItems:
    """Feed id -> the fingerprints of the items of its last stored body, least recent out
    first past `FEEDS_KEPT`."""

    def __init__(self, feeds_kept: int = FEEDS_KEPT) -> None:
        self._kept = feeds_kept
        self._by_feed: OrderedDict[str, bytes] = OrderedDict()

    def of(self, feed_id: str) -> bytes:
        return self._by_feed.get(feed_id, b"")

    def remember(self, feed_id: str, items: Iterable[Item]) -> None:
        """The feed's body was stored with `items`: those are known from now on."""
        self._by_feed[feed_id] = b"".join(map(fingerprint, items))
        self._by_feed.move_to_end(feed_id)
        while len(self._by_feed) > self._kept:
            self._by_feed.popitem(last=False)

    def __len__(self) -> int:
        return len(self._by_feed)

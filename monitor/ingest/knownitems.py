"""What each feed's last stored body held, so that its next body's known items are not
tagged, matched and read again.

A feed that changes sends its whole body again with one or two new items; the store keeps
the new and edited ones only, so tagging, matching and reading the others was wasted: most
of a worker's time in a steady state. When a body is stored, the feed's state keeps a
fingerprint of each of its items (guid and content hash: an edit changes the hash), in the
same transaction (`FeedState.known_items`); the worker that polls the feed next gets them with
the state and skips those items. Kept in the database, the memory serves `monitor poll` and
`monitor run` alike, survives restarts, and is shared by instances.

Only an optimisation: a skipped item the store finds new after all (retention deleted it,
a save was lost) is tagged and matched by the cycle's process as it is stored, and its story
read is made when it is linked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import islice

from monitor.models import Item

__all__ = ["ITEMS_KEPT", "fingerprint", "fingerprints", "packed"]

ITEMS_KEPT = 1_000  # a body's first items remembered: 8 KB a feed at most
_SIZE = 8  # bytes of a fingerprint: a collision skips one item's tagging, once, by 1 in 2**64


def fingerprint(item: Item) -> bytes:
    key = f"{item.guid}\x00{item.content_hash}".encode()
    return hashlib.blake2b(key, digest_size=_SIZE).digest()


def packed(items: Iterable[Item]) -> bytes:
    """What a feed's state keeps of a stored body's items."""
    return b"".join(map(fingerprint, islice(items, ITEMS_KEPT)))


def fingerprints(known: bytes) -> frozenset[bytes]:
    """The fingerprints in what `packed` gave."""
    return frozenset(known[i : i + _SIZE] for i in range(0, len(known), _SIZE))

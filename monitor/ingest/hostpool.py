"""Keep-alive connections for the fetcher: one HTTP client per connection, kept per host.

httpx's connection pool walks all its connections, and for each one all of them again, every
time a request starts or ends, asking each idle socket whether the server closed it: with the
32 connections a cycle keeps open that bookkeeping was ~3 ms of CPU per request, more than
everything else a fetch does. A client that holds a single connection has nothing to walk,
so the fetcher takes one per request instead: an idle one for the same host when there is
one (HTTP/1.1 keep-alive), else a new one (cheap: the TLS context is shared).

How many are in use at once is bounded by the fetcher's semaphores (overall and per host);
how many are kept idle is bounded here (`idle_cap`, least recently used closed first), so a
cycle over 10,000 hosts never holds 10,000 open sockets. No HTTP library is imported here:
`fetch` brings the factory and the closer.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["HostPool"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


class HostPool(Generic[K, C]):
    """Idle single-connection clients by host key; `take` one, `give` it back."""

    def __init__(
        self, open_: Callable[[K], C], close: Callable[[C], Awaitable[None]], idle_cap: int
    ) -> None:
        self._open = open_
        self._close = close
        self._idle_cap = max(idle_cap, 0)
        self._idle: dict[K, list[C]] = {}
        # Every idle client, oldest first: (host key, client) by id(client).
        self._order: OrderedDict[int, tuple[K, C]] = OrderedDict()
        self._open_now: dict[int, C] = {}  # every client not yet closed, in use or idle

    def take(self, host: K) -> C:
        """An idle client of `host` (its connection may be reused), else a new one (the
        factory is told the host: a proxy may serve some hosts and not others)."""
        idle = self._idle.get(host)
        if idle:
            client = idle.pop()
            del self._order[id(client)]
            return client
        client = self._open(host)
        self._open_now[id(client)] = client
        return client

    async def give(self, host: K, client: C, *, reusable: bool) -> None:
        """Return a client after its request: kept idle for the host if the exchange ended
        cleanly, else closed (after an error its connection is in an unknown state)."""
        if not reusable:
            await self._discard(client)
            return
        self._idle.setdefault(host, []).append(client)
        self._order[id(client)] = (host, client)
        while len(self._order) > self._idle_cap:
            _, (old_host, old) = self._order.popitem(last=False)
            self._idle[old_host].remove(old)
            await self._discard(old)

    async def _discard(self, client: C) -> None:
        self._open_now.pop(id(client), None)
        with contextlib.suppress(Exception):  # closing a broken connection may fail: moot
            await self._close(client)

    async def aclose(self) -> None:
        """Close every client, idle or not (a cancelled fetch may not have given one back)."""
        clients = list(self._open_now.values())
        self._idle.clear()
        self._order.clear()
        self._open_now.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                await self._close(client)

    @property
    def idle(self) -> int:
        return len(self._order)

    @property
    def open(self) -> int:
        return len(self._open_now)

"""Keep-alive: the fetcher's single-connection clients, kept per host (`ingest.hostpool`)."""

from __future__ import annotations

import asyncio

from monitor.ingest.fetch import Fetcher
from monitor.ingest.hostpool import HostPool
from monitor.models import FeedState, FetchStatus, Settings
from tests.support.feedserver import FeedServer, redirect, serve, status, with_etag

RSS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Desk</title>'
    b"<item><title>Coast guard patrol</title><guid>1</guid></item></channel></rss>\n"
)
FAST = Settings(connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)


# --- with a real server -------------------------------------------------------------------


async def test_one_connection_serves_a_host_s_fetches_one_after_another(
    server: FeedServer,
) -> None:
    urls = [server.add(f"/f{n}.xml", with_etag(RSS, f'"v{n}"')) for n in range(5)]
    async with Fetcher(FAST) as fetcher:
        first = [await fetcher.fetch(f"f{n}", FeedState(f"f{n}", u)) for n, u in enumerate(urls)]
        again = [
            await fetcher.fetch(r.feed_id, FeedState(r.feed_id, r.url, etag=r.etag)) for r in first
        ]
    assert [r.status for r in first] == [FetchStatus.OK] * 5
    # 304s included: a 304 is read to its end, or its connection could not be used again.
    assert [r.status for r in again] == [FetchStatus.NOT_MODIFIED] * 5
    assert server.connections == 1


async def test_concurrent_fetches_open_at_most_per_host_connections(server: FeedServer) -> None:
    url = server.add("/many.xml", serve(RSS))
    settings = Settings(per_host=3, connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)
    async with Fetcher(settings) as fetcher:
        for _ in range(3):  # three rounds, each of 9 fetches at once
            states = [FeedState(f"f{n}", url) for n in range(9)]
            results = await asyncio.gather(*(fetcher.fetch(s.feed_id, s) for s in states))
            assert all(r.status is FetchStatus.OK for r in results)
    assert server.connections <= 3


async def test_an_error_answer_or_a_redirect_leaves_no_connection_broken(
    server: FeedServer,
) -> None:
    good = server.add("/good.xml", serve(RSS))
    server.add("/moved.xml", redirect(good, 302))
    server.add("/broken.xml", status(500, body=b"oops"))
    async with Fetcher(FAST) as fetcher:
        for path in ("/moved.xml", "/broken.xml", "/good.xml", "/moved.xml"):
            url = server.url(path)
            result = await fetcher.fetch("desk", FeedState("desk", url))
            expected = FetchStatus.ERROR if path == "/broken.xml" else FetchStatus.OK
            assert result.status is expected


# --- the pool itself (pure: the clients are stand-ins) --------------------------------------


class Client:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False


class Clients:
    def __init__(self) -> None:
        self.made: list[Client] = []

    def open(self, host: object) -> Client:
        self.made.append(Client(len(self.made)))
        return self.made[-1]

    async def close(self, client: Client) -> None:
        client.closed = True


async def test_an_idle_client_is_taken_again_for_its_host_only() -> None:
    clients = Clients()
    pool = HostPool(clients.open, clients.close, idle_cap=4)
    a = pool.take("a")
    await pool.give("a", a, reusable=True)
    assert pool.take("b") is not a
    assert pool.take("a") is a
    assert len(clients.made) == 2


async def test_a_client_given_back_after_an_error_is_closed() -> None:
    clients = Clients()
    pool = HostPool(clients.open, clients.close, idle_cap=4)
    a = pool.take("a")
    await pool.give("a", a, reusable=False)
    assert a.closed and pool.idle == 0 and pool.open == 0
    assert pool.take("a") is not a


async def test_idle_clients_beyond_the_cap_are_closed_oldest_first() -> None:
    clients = Clients()
    pool = HostPool(clients.open, clients.close, idle_cap=2)
    taken = [pool.take(host) for host in ("a", "b", "c")]
    for host, client in zip(("a", "b", "c"), taken, strict=True):
        await pool.give(host, client, reusable=True)
    assert [c.closed for c in taken] == [True, False, False]
    assert pool.idle == 2 and pool.open == 2


async def test_closing_the_pool_closes_clients_in_use_too() -> None:
    clients = Clients()
    pool = HostPool(clients.open, clients.close, idle_cap=2)
    busy, idle = pool.take("a"), pool.take("b")
    await pool.give("b", idle, reusable=True)
    await pool.aclose()
    assert busy.closed and idle.closed
    assert pool.open == 0 and pool.idle == 0

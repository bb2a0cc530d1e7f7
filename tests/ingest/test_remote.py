"""Worker processes fetch and ingest (`ingest.remote`): the cycle's process only stores.

Real worker processes, a real HTTP server, a real SQLite file. Which process made a request is
read from the kernel: the owner of the client end of the request's TCP connection.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.ingest.poll import Parser, poll_cycle
from monitor.ingest.workers import NICE
from monitor.match.ruleset import RuleSet
from monitor.models import Feed, FetchStatus, Settings
from monitor.store import Store
from tests.ingest.test_feed_login import LOGIN_ENV, needs_login
from tests.ingest.test_poll import TWO, rss
from tests.support.feedserver import Exchange, FeedServer, Route, crowd, stall, with_etag
from tests.support.procs import parents

SETTINGS = Settings(connect_timeout=2, read_timeout=2, total_timeout=4)


@pytest.fixture
def parser() -> Iterator[Parser]:
    kept = Parser(2)  # kept across cycles, as the service keeps it
    yield kept
    kept.close()


def owner_of_client_port(port: int) -> int | None:
    """The process holding the client end of a loopback TCP connection from `port`."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        # An earlier connection from the same port may linger in TIME_WAIT, owned by no one
        # (inode 0): only a live socket names its process.
        if int(fields[1].split(":")[1], 16) == port and fields[9] != "0":
            inode = fields[9]
    if inode is None:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                return int(pid)
        except OSError:
            continue
    return None


def recording(route: Route, seen: list[int | None]) -> Route:
    def recorded(exchange: Exchange) -> None:
        port = exchange._handler.client_address[1]  # the request's own connection
        seen.append(owner_of_client_port(port))
        route(exchange)

    return recorded


def feeds_at(server: FeedServer, count: int, route: Callable[[int], Route]) -> list[Feed]:
    return [Feed(id=f"f{n}", url=server.add(f"/f{n}.xml", route(n))) for n in range(count)]


async def test_workers_fetch_and_parse_and_the_cycle_s_process_makes_no_request(
    server: FeedServer, store: Store, parser: Parser
) -> None:
    seen: list[int | None] = []
    feeds = feeds_at(
        server, 12, lambda n: recording(with_etag(rss((f"g{n}", f"Story {n}")), f'"{n}"'), seen)
    )
    cold = await poll_cycle(feeds, store, SETTINGS, parser=parser)
    warm = await poll_cycle(feeds, store, SETTINGS, parser=parser, force=True)
    assert [o.status for o in cold.outcomes] == [FetchStatus.OK] * 12
    assert [o.status for o in warm.outcomes] == [FetchStatus.NOT_MODIFIED] * 12  # the etags
    assert store.count_items() == 12
    workers = set(parser.worker_pids)
    assert len(seen) == 24 and set(seen) <= workers and os.getpid() not in workers


async def test_the_workers_run_below_the_priority_of_the_processes_they_feed(
    server: FeedServer, tmp_path: Path, parser: Parser
) -> None:
    feeds = feeds_at(server, 4, lambda n: with_etag(rss((f"g{n}", f"Story {n}")), f'"{n}"'))
    with Store(tmp_path / "p.db") as store:  # priorities do not depend on the backend
        summary = await poll_cycle(feeds, store, SETTINGS, parser=parser)
    assert {o.status for o in summary.outcomes} == {FetchStatus.OK}
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    workers = parser.worker_pids
    assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] == [min(mine + NICE, 19)] * 2
    # The fork server they came from, which forks the linking process too, kept this one's.
    tree = parents()
    (server_pid,) = {tree[pid] for pid in workers}
    assert server_pid != os.getpid() and os.getpriority(os.PRIO_PROCESS, server_pid) == mine


async def test_the_settings_limits_hold_across_the_workers(store: Store, parser: Parser) -> None:
    for settings in (
        Settings(concurrency=3, per_host=8, connect_timeout=2, read_timeout=3, total_timeout=5),
        Settings(concurrency=8, per_host=2, connect_timeout=2, read_timeout=3, total_timeout=5),
    ):
        limit = min(settings.concurrency, settings.per_host)
        with FeedServer() as server:
            route = crowd(TWO, limit)  # holds the first `limit` until they are all in flight
            feeds = feeds_at(server, 12, lambda _n, route=route: route)  # type: ignore[misc]
            summary = await poll_cycle(feeds, store, settings, parser=parser, force=True)
            assert {o.status for o in summary.outcomes} == {FetchStatus.OK}
            assert server.max_in_flight == limit


async def test_a_worker_that_dies_fails_its_feeds_alone_and_is_replaced(
    server: FeedServer, store: Store, parser: Parser
) -> None:
    feeds = feeds_at(server, 10, lambda n: stall())  # never answer in full
    # All ten in flight at once, none timing out before the kill.
    wide = Settings(concurrency=16, per_host=16, connect_timeout=2, read_timeout=3, total_timeout=4)
    cycle = asyncio.create_task(poll_cycle(feeds, store, wide, parser=parser, force=True))
    assert await asyncio.to_thread(server.wait_for_in_flight, 10, 5.0)
    doomed = parser.worker_pids[0]
    os.kill(doomed, signal.SIGKILL)
    summary = await cycle
    errors = [o.error or "" for o in summary.outcomes]
    died = [e for e in errors if "worker process polling it ended" in e]
    assert len(died) == 5 and all("-9" in e for e in died)  # its half; exit code: killed
    assert sum("took more than" in e or "timed out" in e for e in errors) == 5  # the others
    for n in range(10):
        server.add(f"/f{n}.xml", with_etag(rss((f"g{n}", f"Story {n}"))))
    again = await poll_cycle(feeds, store, SETTINGS, parser=parser, force=True)
    assert {o.status for o in again.outcomes} == {FetchStatus.OK}
    assert doomed not in parser.worker_pids


async def test_a_login_set_after_the_workers_started_reaches_them(
    server: FeedServer, store: Store, parser: Parser, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = [
        Feed(
            id=f"p{n}",
            url=server.add(f"/p{n}.xml", needs_login(TWO)),
            username_env="FEED_USER",
            password_env="FEED_PASSWORD",
        )
        for n in range(10)
    ]
    before = await poll_cycle(feeds, store, SETTINGS, parser=parser, force=True)
    assert all("FEED_USER and FEED_PASSWORD" in (o.error or "") for o in before.outcomes)
    for name, value in LOGIN_ENV.items():
        monkeypatch.setenv(name, value)
    after = await poll_cycle(feeds, store, SETTINGS, parser=parser, ignore_backoff=True)
    assert {o.status for o in after.outcomes} == {FetchStatus.OK}
    assert store.count_items() == 20


class _Uncompilable(RuleSet):
    """A rule set that fails where a worker unpickles (compiles) it, naming that moment."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_refuse, ("the worker compiled the rule set",))


def _refuse(why: str) -> RuleSet:
    raise RuntimeError(why)


async def test_a_worker_compiles_the_rules_at_its_first_body_only(
    server: FeedServer, store: Store, shipped_rules: RuleSet
) -> None:
    """A poll in which every feed is unchanged never compiles the rules in the workers (the
    CLI's `monitor poll` starts them afresh each time); the first body to ingest does."""
    feeds = feeds_at(server, 8, lambda n: with_etag(rss((f"g{n}", f"Story {n}")), f'"{n}"'))
    cold = await poll_cycle(feeds, store, SETTINGS, parser=Parser(0))
    assert [o.status for o in cold.outcomes] == [FetchStatus.OK] * 8
    rules = _Uncompilable(*(getattr(shipped_rules, f) for f in ("rules", "gazetteer", "matcher")))
    parser = Parser(2)
    try:
        warm = await poll_cycle(feeds, store, SETTINGS, parser=parser, ruleset=rules, force=True)
        assert [(o.status, o.error) for o in warm.outcomes] == [
            (FetchStatus.NOT_MODIFIED, None)
        ] * 8
        changed = Feed(id="g-new", url=server.add("/new.xml", with_etag(rss(("n", "New")))))
        body = await poll_cycle([changed], store, SETTINGS, parser=parser, ruleset=rules)
    finally:
        parser.close()
    (outcome,) = body.outcomes
    assert outcome.status is FetchStatus.ERROR
    assert "the worker compiled the rule set" in (outcome.error or "")

"""Worker processes that fetch and ingest feeds, so the cycle's own process only stores.

Each worker runs an event loop with a `Fetcher` of its own, fetches many feeds at once and
ingests each body as it arrives (parse, normalise, tag, match, rows prepared); it sends back
the fetch's outcome without its body and the rows ready to write. Bodies never leave the
worker. Why: with every request on the cycle's one event loop, httpx's ~0.7 ms of CPU per
request set the floor of a warm poll (~0.8 s for 1,000 feeds), and every body was read in one
process to be shipped to another for parsing.

What stays as it was:
- the limits of `feeds.yaml`: the cycle holds the `concurrency` slot and the host slot of
  each feed's URL while a worker polls it (`Fetcher.slots`); a worker's own `Fetcher` bounds
  the hops of redirects (a redirect's target host may see per_host requests from each worker);
- a feed's login: the values of the variables it names are read in the cycle's process and
  sent with the feed (a worker's environment is the fork server's, which may be older);
- keep-alive connections live for a cycle: `rest()` at its end closes the idle ones.

Talking: two pipes per worker (feeds in, outcomes out), each drained by a thread that hands
what it reads to an event loop, so neither side's loop waits on a pipe the other side is not
reading. A worker that dies (killed, out of memory) fails the feeds it held with an error and
is replaced for the next feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import threading
from dataclasses import replace
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from monitor.ingest.fetch import Fetcher
from monitor.ingest.forking import forkserver
from monitor.ingest.ingestion import Enriched, ingest
from monitor.ingest.workers import die_with, give_way
from monitor.match.ruleset import RuleSet
from monitor.models import Feed, FeedState, FetchResult, FetchStatus, Settings

__all__ = ["Outcome", "RemotePool"]

# What a worker sends back for a feed: the fetch (no body) and what ingesting it gave: rows,
# or the parse error's text; None when there was no body to ingest.
Outcome = tuple[FetchResult, Enriched | str | None]
_Job = tuple[int, Feed, FeedState, datetime, dict[str, str | None]]
_REST = "rest"  # the cycle is over: close idle connections
STOP_SECONDS = 5.0  # for a worker to end once asked, before it is killed


class WorkerGone(RuntimeError):
    """The worker polling a feed ended before it answered."""


class RemotePool:
    """`workers` processes with one rule set and one `Settings`; `poll` one feed at a time.
    With `link`, they read what story linking needs from each item (see `ingest`)."""

    def __init__(
        self, workers: int, ruleset: RuleSet | None, settings: Settings, link: bool = True
    ) -> None:
        self.ruleset = ruleset
        self.settings = settings
        self.link = link
        # Pickled once here; a worker compiles it at its first body (see `_Serving.rules`).
        self._rules = None if ruleset is None else pickle.dumps(ruleset, pickle.HIGHEST_PROTOCOL)
        self._remotes = [_Remote(self._rules, settings, link) for _ in range(max(workers, 1))]
        self._ids = itertools.count()

    async def poll(self, feed: Feed, state: FeedState, now: datetime) -> Outcome:
        """Fetch and ingest one feed in the worker with the fewest feeds in hand; the items
        its state knows are left bare (see `ingest`)."""
        index, remote = min(enumerate(self._remotes), key=lambda pair: len(pair[1].pending))
        if not remote.alive:
            remote.kill()
            remote = self._remotes[index] = _Remote(self._rules, self.settings, self.link)
        return await remote.call((next(self._ids), feed, state, now, _login_values(feed)))

    @property
    def pids(self) -> list[int]:
        return [remote.process.pid or 0 for remote in self._remotes]

    def rest(self) -> None:
        for remote in self._remotes:
            remote.send(_REST)

    def close(self) -> None:
        for remote in self._remotes:
            remote.send(None)
        for remote in self._remotes:
            remote.stop()

    def abandon(self) -> None:
        for remote in self._remotes:
            remote.kill()


def _login_values(feed: Feed) -> dict[str, str | None]:
    names = (feed.username_env, feed.password_env)
    return {name: os.environ.get(name) for name in names if name is not None}


class _Remote:
    """One worker process, its two pipes, and the feeds it holds (by job id)."""

    def __init__(self, ruleset: bytes | None, settings: Settings, link: bool) -> None:
        ctx = forkserver()
        jobs_in, self._jobs = ctx.Pipe(duplex=False)
        self._results, results_out = ctx.Pipe(duplex=False)
        args = (jobs_in, results_out, ruleset, settings, os.getpid(), link)
        self.process = ctx.Process(target=serve, args=args, name="monitor-poll", daemon=True)
        self.process.start()
        jobs_in.close()  # the worker's ends: ours closed, so its death reads as end of file
        results_out.close()
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Outcome]]] = {}
        # Jobs and results go in batches, one per turn of the sender's loop: a message is a
        # write, a wake-up and a hand-over between threads on the other side (~0.1 ms each).
        self._outbox: list[_Job] = []
        self._lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, name="monitor-poll-results", daemon=True).start()

    async def call(self, job: _Job) -> Outcome:
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[Outcome] = loop.create_future()
        with self._lock:
            if not self.alive:
                raise self._gone()
            self.pending[job[0]] = (loop, waiting)
        try:
            self._outbox.append(job)
            if len(self._outbox) == 1:  # the first this turn: send them all at its end
                loop.call_soon(self._flush)
            return await waiting
        finally:
            with self._lock:
                self.pending.pop(job[0], None)

    def _flush(self) -> None:
        jobs, self._outbox = self._outbox, []
        self.send(jobs)

    def send(self, message: object) -> None:
        with contextlib.suppress(OSError, ValueError):  # gone already: nothing to tell
            self._jobs.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def stop(self) -> None:
        self.process.join(STOP_SECONDS)
        self.kill()

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(STOP_SECONDS)
        self._jobs.close()

    def _read(self) -> None:
        """The results thread: each outcome to the loop of the poll waiting for it."""
        while True:
            try:
                batch = pickle.loads(self._results.recv_bytes())
            except (EOFError, OSError):
                break
            self._settle(batch)
        self.process.join(STOP_SECONDS)  # to name its exit code
        with self._lock:
            self.alive = False
            orphans = list(self.pending)
        self._settle([(job_id, self._gone()) for job_id in orphans])
        self._results.close()

    def _gone(self) -> WorkerGone:
        return WorkerGone(
            f"the worker process polling it ended (exit code {self.process.exitcode}); "
            "the feed is polled again next cycle"
        )

    def _settle(self, batch: list[tuple[int, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Any]]] = {}
        with self._lock:
            for job_id, payload in batch:
                found = self.pending.get(job_id)
                if found is not None:  # else its poll was cancelled
                    by_loop.setdefault(found[0], []).append((found[1], payload))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[Outcome], Any]]) -> None:
    for waiting, payload in settled:
        if waiting.done():
            continue
        if isinstance(payload, BaseException):
            waiting.set_exception(payload)
        else:
            waiting.set_result(payload)


# --- in the worker ------------------------------------------------------------------------


def serve(
    jobs: Connection,
    results: Connection,
    ruleset: bytes | None,
    settings: Settings,
    owner: int,
    link: bool = True,
) -> None:
    """A worker's life: poll the feeds it is sent until told to stop (or its owner ends).
    `ruleset` is the pickled `RuleSet`, compiled at the first body the worker ingests."""
    die_with(owner)  # never outlive the process that owns the pool, even after a SIGKILL
    give_way()  # to the processes that store and link what it parses
    asyncio.run(_Serving(jobs, results, ruleset, settings, link).run())


class _Serving:
    def __init__(
        self,
        jobs: Connection,
        results: Connection,
        ruleset: bytes | None,
        settings: Settings,
        link: bool,
    ) -> None:
        self._jobs = jobs
        self._results = results
        self._pickled_rules = ruleset
        self._ruleset: RuleSet | None = None
        self._settings = settings
        self._link = link
        self._fetcher: Fetcher | None = None
        self._outbox: list[tuple[int, object]] = []

    async def run(self) -> None:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._receive, args=(loop, inbox), daemon=True).start()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while (message := await inbox.get()) is not None:
                if message == _REST:
                    await self._rest()
                    continue
                for job in message:
                    task = asyncio.create_task(self._poll(*job))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            await self._rest()

    def _receive(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Any]) -> None:
        while True:
            try:
                message = pickle.loads(self._jobs.recv_bytes())
            except (EOFError, OSError):
                message = None  # the owner closed its end: stop
            loop.call_soon_threadsafe(inbox.put_nowait, message)
            if message is None:
                return

    def rules(self) -> RuleSet | None:
        """The rule set, compiled at the first body to ingest: a poll in which every feed is
        unchanged (304) never compiles it (0.12-0.17 s before a worker's first request)."""
        if self._ruleset is None and self._pickled_rules is not None:
            self._ruleset = pickle.loads(self._pickled_rules)
            self._pickled_rules = None
        return self._ruleset

    async def _rest(self) -> None:
        fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            await fetcher.__aexit__(None, None, None)

    async def _open(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = await Fetcher(self._settings).__aenter__()
        return self._fetcher

    async def _poll(
        self, job_id: int, feed: Feed, state: FeedState, now: datetime, login: dict[str, str | None]
    ) -> None:
        payload: object
        try:
            for name, value in login.items():
                _set_env(name, value)
            result = await (await self._open()).fetch(feed.id, state, feed)
            ingested = None
            if result.status is FetchStatus.OK:
                body = result.body or b""
                ingested = ingest(
                    feed,
                    body,
                    result.headers,
                    result.url,
                    now,
                    self.rules(),
                    self._link,
                    state.known_items,
                )
            payload = (replace(result, body=None, headers={}), ingested)
        except Exception as exc:  # a bug: reported as the feed's unexpected error
            payload = _portable(exc)
        self._outbox.append((job_id, payload))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        results, self._outbox = self._outbox, []
        self._results.send_bytes(pickle.dumps(results, pickle.HIGHEST_PROTOCOL))


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _portable(exc: Exception) -> Exception:
    """The exception itself if it survives pickling (ours carry keyword arguments and do
    not), else one that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(repr(exc))
    return exc

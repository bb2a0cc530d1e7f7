"""The fork server that starts a cycle's worker processes (`remote`) and its linking process
(`linkproc`), and starting it before it is needed.

Forkserver, not fork: a forked worker would inherit the service's open files (its instance
lock among them) and the threads' state (the health server). The server loads the workers'
modules once (`monitor.ingest.preload`) and forks each worker from itself.

Starting the server is much of what a short `monitor poll` waits for: a new interpreter that
imports httpx, lxml, feedparser and the rest (~0.5 s from its start to its first fork), and
the first worker's start blocks until it is done. `start_early` starts it as soon as the
command knows it will want workers, so that this happens on the other core while the command
itself reads its rules, opens the store and reads the feeds' states. Only the standard
library is imported here, so that asking costs nothing of what it is meant to save.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import sys

WORKERS_FROM = 8  # due feeds from which a cycle polls in worker processes (fewer: inline)


def worker_count(feed_count: int) -> int:
    """Worker processes for a cycle of `feed_count` feeds: none for a few, else one per core."""
    return 0 if feed_count < WORKERS_FROM else (os.cpu_count() or 1)


def forkserver() -> multiprocessing.context.ForkServerContext:
    """The context that starts the workers and the linking process."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_preload())
    return ctx


def start_early(feed_count: int) -> None:
    """Start the fork server now if a cycle of `feed_count` feeds will use workers; it then
    loads their modules while this process goes on (it does not wait for it)."""
    if worker_count(feed_count):
        forkserver()
        multiprocessing.forkserver.ensure_running()


def _preload() -> list[str]:
    """What the fork server loads once, for every worker it forks: what a worker runs
    (`preload`), and the main module run with -m (each worker runs it again first; a main
    script is meant to be preloaded as `__main__`, which Python 3.11 does not do)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    main = [spec.name] if spec is not None and not spec.name.endswith("__main__") else []
    return ["__main__", "monitor.ingest.preload", *main]

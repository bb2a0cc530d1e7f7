"""Parse workers die with `monitor run`, even when it is killed with SIGKILL.

The service parses in a pool of worker processes once it has 8 feeds or more; the workers are
forked by multiprocessing's fork server, so they are the service's grandchildren. Killing the
service must take them all (fork server included) within a few seconds, or every kill and
restart leaves another set behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.ingest.test_poll import rss
from tests.support.feedserver import FeedServer, serve
from tests.support.procs import descendants, running, wait_gone
from tests.support.service import WAIT, RunningService

FEEDS = 8  # the service parses in worker processes from this many feeds on


def start_with_workers(tmp_path: Path, server: FeedServer, name: str) -> RunningService:
    rules = tmp_path / name / "rules"
    rules.mkdir(parents=True)
    urls = [
        server.add(f"/{name}/{n}.xml", serve(rss((f"g{n}", f"item {n}")))) for n in range(FEEDS)
    ]
    lines = ["feeds:"] + [f"  - url: {url}\n    interval: 1m" for url in urls]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    service = RunningService(rules, tmp_path / name / "monitor.db")
    service.wait_for(f"poll cycle: {FEEDS} feeds ({FEEDS} ok")
    return service


def test_sigkill_takes_every_worker_with_the_service(tmp_path: Path) -> None:
    with FeedServer() as server:
        leftovers: set[int] = set()
        for run in ("first", "second"):  # a restart must not stack them either
            service = start_with_workers(tmp_path, server, run)
            tree = descendants(service.proc.pid)
            try:
                workers = {pid for pid, depth in tree.items() if depth >= 2}
                assert workers, f"no parse workers under the service: {tree}"
                service.proc.send_signal(signal.SIGKILL)
                service.proc.wait(timeout=WAIT)
                leftovers |= wait_gone(set(tree), timeout=10)
            finally:
                for pid in tree:  # whatever the outcome, leave nothing behind for other tests
                    if running(pid):
                        os.kill(pid, signal.SIGKILL)
                _close(service)
    assert leftovers == set(), f"still running after the service was killed: {leftovers}"


def _close(service: RunningService) -> None:
    if service.proc.poll() is None:
        service.proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # only when something is badly wrong
        service.proc.wait(timeout=WAIT)
    service._reader.join(timeout=WAIT)  # the pipe ends with the process
    if service.proc.stderr is not None:
        service.proc.stderr.close()

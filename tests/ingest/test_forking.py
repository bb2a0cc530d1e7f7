"""Starting the workers' fork server early (`forking.start_early`), in a real subprocess: the
fork server belongs to the process that started it, so each case runs in a fresh one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monitor.ingest.forking import WORKERS_FROM, worker_count

# Starts the server early (or not), lists this process's children that are fork servers, then
# starts a process through the context the workers use and names the process that forked it.
_SCRIPT = """
import json, os, sys, time
from monitor.ingest.forking import forkserver, start_early

def children(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(name))
            except OSError:
                pass
    return found

def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\\0", b" ").decode()

start_early(int(sys.argv[1]))
servers = [p for p in children(os.getpid()) if "multiprocessing.forkserver" in cmdline(p)]
worker = forkserver().Process(target=time.sleep, args=(30,), daemon=True)
worker.start()
forked_by = [s for s in children(os.getpid()) if "multiprocessing.forkserver" in cmdline(s)
             and worker.pid in children(s)]
worker.kill()
print(json.dumps({"early": servers, "forked_by": forked_by}))
"""


def _run(feeds: int) -> dict[str, list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(feeds)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, list[int]] = json.loads(done.stdout)
    return result


def test_a_cycle_with_workers_starts_the_fork_server_that_then_forks_them() -> None:
    found = _run(WORKERS_FROM)
    assert len(found["early"]) == 1  # running before any worker was asked for
    assert found["forked_by"] == found["early"]  # and the one the workers come from


def test_a_cycle_polled_inline_starts_no_fork_server() -> None:
    found = _run(WORKERS_FROM - 1)
    assert found["early"] == []
    assert len(found["forked_by"]) == 1  # a worker asked for anyway starts it then


@pytest.mark.parametrize(
    ("feeds", "inline"), [(0, True), (WORKERS_FROM - 1, True), (WORKERS_FROM, False)]
)
def test_workers_are_for_cycles_of_many_feeds(feeds: int, inline: bool) -> None:
    assert (worker_count(feeds) == 0) is inline

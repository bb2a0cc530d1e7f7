"""Parse workers die with the process that started them, however it ends, and give way to it.

The pool's workers are forked by multiprocessing's fork server, not by the service, and each
of them holds the fork server's "alive" pipe open: when the service is killed (SIGKILL, OOM),
the fork server waits for the workers and the workers wait for work that never comes. Every
kill used to leave them all behind, and a restart added a new set.

`die_with(owner)`, run first in each worker, cuts both knots:

- a thread waits on a pidfd of the owner (Linux 5.3+), or checks once a second that it is
  still there, and ends the worker the moment it is gone (no pid-reuse race: the pidfd
  names that very process);
- `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks the kernel to kill the worker if its own parent
  (the fork server, or the owner itself under the fork method) dies first.

Once the workers are gone, the fork server sees its pipe close and exits too. The worker also
ignores SIGINT: Ctrl-C reaches the whole process group, and stopping the workers is the
owner's business (it kills them when it stops).

`give_way()`, run next, lowers the worker's scheduling priority by `NICE`. A poll waits for
the process that stores and, in a large cycle, for the one that links (`monitor.ingest.linkproc`);
the parse workers only feed them. At one priority on two cores, the two workers took most of
the CPU while linking fell behind: a cold poll of 1,000 feeds ended with ~4 s of linking alone
on one core, the other idle. A step below, the workers get what those two leave, which is
the rest of the machine: the same poll links as it stores, and ends sooner (see the README's
Performance). The linking process and the fork server keep the owner's priority.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["NICE", "die_with", "give_way"]

_Watch = Callable[[], None]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0  # how often the fallback watch checks the owner
EXIT_ORPHANED = 70  # the exit status of a worker whose owner is gone (EX_SOFTWARE)
# How much lower a parse worker's priority is (a nice increment): its CPU share under
# contention is about a third of a process at the owner's priority (10 made polls no faster).
NICE = 5


def die_with(owner: int) -> None:
    """Make this worker process end when process `owner` (the pool's creator) ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _kill_with_parent()
    watch = _pidfd_watch(owner) or _polling_watch(owner)
    threading.Thread(target=watch, name=f"die-with-{owner}", daemon=True).start()


def give_way() -> None:
    """Lower this worker's priority by `NICE` (see the module docstring). Lowering needs no
    privilege; where the system refuses anyway, the worker runs as it is."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)


def _kill_with_parent() -> None:
    """The kernel's own guarantee, where there is one (Linux); best effort elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(EXIT_ORPHANED)  # the parent died before the request took effect


def _pidfd_watch(owner: int) -> _Watch | None:
    try:
        fd = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(EXIT_ORPHANED)  # gone already
    except (AttributeError, OSError):
        return None  # not Linux, or a kernel before 5.3

    def watch() -> None:
        select.select([fd], [], [])  # readable once the process has ended
        os._exit(EXIT_ORPHANED)

    return watch


def _polling_watch(owner: int) -> _Watch:
    def watch() -> None:
        while _alive(owner):
            time.sleep(POLL_SECONDS)
        os._exit(EXIT_ORPHANED)

    return watch


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: cannot happen for our own owner
    return True

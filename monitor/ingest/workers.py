"""Parse workers die with the process that started them, however it ends.

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

__all__ = ["die_with"]

_Watch = Callable[[], None]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0  # how often the fallback watch checks the owner
EXIT_ORPHANED = 70  # the exit status of a worker whose owner is gone (EX_SOFTWARE)


def die_with(owner: int) -> None:
    """Make this worker process end when process `owner` (the pool's creator) ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _kill_with_parent()
    watch = _pidfd_watch(owner) or _polling_watch(owner)
    threading.Thread(target=watch, name=f"die-with-{owner}", daemon=True).start()


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

"""SIGTERM and Ctrl-C stop the service in time, even when something in it hangs.

The usual asyncio way (`loop.add_signal_handler`) runs the handler on the event loop, so a
loop blocked in a system call (opening a FIFO dropped into rules/, a hung disk) would never
see the signal. Here the handler is a plain Python one: the interpreter runs it in the main
thread as soon as the signal interrupts whatever call is blocking, even one it then resumes.
It asks the loop to stop (thread-safely), and starts a timer: if the process is still there
`grace` seconds later, it logs what happened and exits at once. That is safe: a feed's items
are written in one SQLite transaction (an unfinished one rolls back), a digest is recorded as
sent only after the server accepted it, the parse workers follow their owner out, and the
kernel releases the instance lock. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from types import FrameType

log = logging.getLogger("monitor.service")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopper:
    """Installs the SIGTERM/SIGINT handlers that set `stop` and guarantee the exit."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, grace: float):
        self._loop, self._stop, self.grace = loop, stop, grace
        self._timer: threading.Timer | None = None

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._timer is not None:
            self._exit(f"a second {name}")
            return
        self._timer = threading.Timer(self.grace, self._exit, args=(f"{self.grace:g} s",))
        self._timer.daemon = True
        self._timer.start()
        # A closed loop (RuntimeError): the process is on its way out; the timer makes sure.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop.set)

    def _exit(self, after: str) -> None:
        log.error("monitor stopped: still not done after %s (something hangs); exiting now", after)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

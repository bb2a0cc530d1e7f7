"""`monitor run` as a real subprocess for the tests: its stderr lines arrive as events.

Every service listens on a free port (`--health-port 0`) and says which in its log; every
wait ends on a log line or a process exit, never on a sleep.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

WAIT = 30.0  # generous upper bound for a loaded CI machine; every wait ends on an event


def monitor_once(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`monitor ARGS` run to its end as a subprocess (a command that should stop at once, e.g.
    `run` refusing a bad setting), its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
        cwd=cwd,
    )


class RunningService:
    """A running `monitor run` whose stderr lines arrive on a queue."""

    def __init__(
        self,
        rules: Path,
        db: Path | str,  # a SQLite file or a PostgreSQL URL
        *options: str,
        tick: float = 0.2,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        argv = [sys.executable, "-m", "monitor", "--rules", str(rules), "--db", str(db)]
        self.proc = subprocess.Popen(
            [*argv, *options, "run", "--health-port", "0", "--tick", str(tick)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._cursor = 0  # lines before it were passed by an earlier wait
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        health = self.wait_for("health and metrics on ", advance=False)
        self.url = health.split(" on ", 1)[1].split()[0]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, *, advance: bool = True) -> str:
        """Block until a log line containing `text` arrives after the last one waited for.

        With `advance=False` the cursor stays put, so lines logged meanwhile can still be
        waited for (used to learn the health URL, logged in any order with the others).
        """
        index = self._cursor
        deadline = time.monotonic() + WAIT
        while True:
            while index < len(self.seen):
                if text in self.seen[index]:
                    if advance:
                        self._cursor = index + 1
                    return self.seen[index]
                index += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self.seen.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        raise AssertionError(f"no log line with {text!r}; saw:\n" + "\n".join(self.seen))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self._reader.join(timeout=WAIT)  # the pipe reaches EOF once the process is gone
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=WAIT) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

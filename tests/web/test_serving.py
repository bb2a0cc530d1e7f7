"""How the console is served: by `monitor run` beside /healthz and /metrics, and alone by
`monitor web`, both as real subprocesses; neither starts beyond loopback without a token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from tests.support.service import WAIT, RunningService

from .conftest import DemoState

TOKEN = "a-console-token-long-enough-0123"


def _monitor(state: DemoState, *args: str, env: dict[str, str] | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "monitor",
        "--rules",
        str(state.rules),
        "--db",
        str(state.db),
        *args,
    ]


def test_monitor_run_serves_the_console_beside_healthz_and_metrics(
    console_state: DemoState,
) -> None:
    service = RunningService(console_state.rules, console_state.db)
    try:
        service.wait_for("console, health and metrics on ", advance=False)
        status, body = service.get("/healthz")
        assert (status == 200 and '"status": "ok"' in body) or '"status":"ok"' in body
        status, metrics = service.get("/metrics")
        assert status == 200 and "monitor_" in metrics
        status, page = service.get("/login")
        assert status == 200 and "<h1>Log in</h1>" in page
        status, css = service.get("/static/console.css")
        assert status == 200 and ":lang(ja)" in css
    finally:
        assert service.stop() == 0


def test_monitor_run_beyond_loopback_without_a_token_refuses_to_start(
    console_state: DemoState,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_WEB_TOKEN"}
    argv = _monitor(console_state, "run", "--health-host", "0.0.0.0", "--health-port", "0")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, env=env)
    assert done.returncode != 0
    assert "without a token" in done.stderr and "MONITOR_WEB_TOKEN" in done.stderr


def test_monitor_web_serves_alone_and_needs_the_token_beyond_loopback(
    console_state: DemoState,
) -> None:
    env = {**os.environ, "MONITOR_WEB_TOKEN": TOKEN}
    argv = _monitor(console_state, "web", "--host", "0.0.0.0", "--port", "0")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket listens
        assert line.startswith("console on http://0.0.0.0:"), line
        port = line.split("0.0.0.0:", 1)[1].split("/", 1)[0]
        url = f"http://127.0.0.1:{port}"
        refused = urllib.request.Request(url + "/feeds", headers={"accept": "application/json"})
        try:
            urllib.request.urlopen(refused, timeout=WAIT)
            raise AssertionError("a page answered without the token")
        except urllib.error.HTTPError as error:
            assert error.code == 401
        bearer = urllib.request.Request(
            url + "/login", headers={"authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(bearer, timeout=WAIT) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0

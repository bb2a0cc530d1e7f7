"""A hung service says so and still stops: /healthz turns 503 with a reason when the poll
cycle makes no progress, SIGTERM ends the process in time whatever hangs, and an edit under
rules/ that cannot be loaded (for any reason) is one log line, counted, with the last good
set kept in force.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)

from monitor.errors import MonitorError
from monitor.service.watchdog import Progress, SchedulerNoise, missed, translate
from monitor.service.watched import Watched
from monitor.store import Store
from tests.ingest.test_poll import TWO, rss
from tests.service.test_ops import Service
from tests.support.feedserver import FeedServer, serve
from tests.support.procs import descendants, running
from tests.support.service import WAIT

FEEDS = 8  # from this many feeds on, the service parses in worker processes
QUICK = "settings:\n  timeout: {connect: 1s, read: 2s, total: 2s}\n"


def write_feeds(rules: Path, urls: list[str], *, disabled: int = 0) -> None:
    lines = [QUICK + "feeds:"]
    for n, url in enumerate(urls):
        lines.append(f"  - url: {url}\n    interval: 1m\n    enabled: {str(n >= disabled).lower()}")
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def health(service: Service) -> tuple[int, dict[str, object]]:
    status, body = service.get("/healthz")
    return status, json.loads(body)


def test_a_stuck_cycle_turns_healthz_503_and_sigterm_still_stops_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    db = tmp_path / "monitor.db"
    with FeedServer() as server:
        urls = [server.add(f"/{n}.xml", serve(rss((f"g{n}", f"item {n}")))) for n in range(FEEDS)]
        write_feeds(rules, urls)
        service = Service(rules, db)
        workers: set[int] = set()
        try:
            service.wait_for(f"poll cycle: {FEEDS} feeds")
            assert health(service)[0] == 200
            # Freeze the parse workers (a worker stuck on a pathological feed), then give one
            # feed something new to parse: the cycle waits for an answer that never comes.
            workers = {p for p, depth in descendants(service.proc.pid).items() if depth >= 2}
            assert workers, "no parse workers to freeze"
            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
            server.add("/0.xml", serve(TWO))
            with Store(db) as store:
                state = next(s for s in store.states().values() if s.url.endswith("/0.xml"))
                store.save_state(dataclasses.replace(state, next_due=datetime.now(UTC)))
            deadline = time.monotonic() + WAIT
            while (answer := health(service))[0] == 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            status, body = answer
        finally:
            started = time.monotonic()
            code = service.stop()
            took = time.monotonic() - started
            for pid in workers:
                if running(pid):
                    os.kill(pid, signal.SIGKILL)
    assert status == 503, body
    assert body["status"] == "unhealthy"
    assert "no poll cycle has completed" in str(body["reason"]), body
    assert "stuck" in str(body["reason"])
    assert code == 0 and took < 10, f"SIGTERM took {took:.1f} s"
    assert not [pid for pid in workers if running(pid)], "frozen workers were left behind"


def test_healthz_counts_enabled_feeds_only(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    with FeedServer() as server:
        write_feeds(rules, [server.add(f"/{n}.xml", serve(TWO)) for n in range(3)], disabled=2)
        service = Service(rules, tmp_path / "monitor.db")
        try:
            service.wait_for("monitor running")
            status, body = health(service)
        finally:
            assert service.stop() == 0
    assert status == 200
    assert body["feeds"] == 1


STOPPER = """
import asyncio, logging, os, sys
from monitor.service.stopping import Stopper

async def main():
    stop = asyncio.Event()
    Stopper(asyncio.get_running_loop(), stop, float(sys.argv[2])).install()
    print("ready", flush=True)
    os.open(sys.argv[1], os.O_RDONLY)  # blocks the event loop: nobody writes to this FIFO

logging.basicConfig()
asyncio.run(main())
"""


def test_sigterm_ends_a_process_whose_event_loop_is_blocked(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    grace = 1.5
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPER, str(fifo), str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    took = time.monotonic() - started
    assert proc.returncode == 0
    assert grace <= took < grace + 5, f"exited after {took:.1f} s"
    assert "still not done after 1.5 s (something hangs); exiting now" in stderr


def saved(path: Path, text: str, ago: float = 2.0) -> None:
    """Write `path` as saved `ago` seconds ago: an edit is taken once it has settled."""
    path.write_text(text, encoding="utf-8")
    when = time.time() - ago
    os.utime(path, (when, when))


def test_an_edit_is_taken_once_it_has_settled_and_at_once_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "asia.yaml"
    path.write_text("one\n", encoding="utf-8")
    watched = Watched("rules", (tmp_path,), lambda: path.read_text(encoding="utf-8"))
    # Just written (as an editor that saves in place may still be doing): left for a tick.
    path.write_text("", encoding="utf-8")
    assert watched.refresh() is False and watched.value == "one\n"
    saved(path, "two\n")  # the editor is done, and the file left alone since
    assert watched.refresh() is True and watched.value == "two\n"
    path.write_text("three\n", encoding="utf-8")
    assert watched.refresh(force=True) is True and watched.value == "three\n"  # SIGHUP
    assert watched.refresh() is False  # taken already


def test_a_file_dated_in_the_future_or_removed_is_taken_at_once(tmp_path: Path) -> None:
    path = tmp_path / "asia.yaml"
    path.write_text("one\n", encoding="utf-8")
    watched = Watched("rules", (tmp_path,), lambda: sorted(p.name for p in tmp_path.glob("*")))
    other = tmp_path / "more.yaml"
    saved(other, "two\n", ago=-3600)  # a clock an hour ahead wrote it
    assert watched.refresh() is True and watched.value == ["asia.yaml", "more.yaml"]
    path.unlink()  # a removal is never half done
    assert watched.refresh() is True and watched.value == ["more.yaml"]


def test_a_reload_that_raises_anything_is_one_line_and_counted(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    rules = tmp_path / "deep.yaml"
    rules.write_text("rules: []\n", encoding="utf-8")
    outcomes: list[tuple[str, bool]] = []
    attempts = iter([["good"], RecursionError("maximum recursion depth exceeded"), ["better"]])

    def load() -> list[str]:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    watched = Watched("rules", (rules,), load, lambda what, ok: outcomes.append((what, ok)))
    saved(rules, "rules: [[[[[[]]]]]]\n")
    with caplog.at_level(logging.INFO, logger="monitor.service"):
        assert watched.refresh() is False
    assert watched.value == ["good"]  # the last good set stays in force
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = record.getMessage()
    assert "\n" not in line and record.exc_info is None
    assert f"{rules}: cannot be loaded (RecursionError: maximum recursion depth exceeded)" in line
    assert line.endswith("keeping the last good rules")
    saved(rules, "rules: []  # fixed\n")
    assert watched.refresh() is True and watched.value == ["better"]
    assert outcomes == [("rules", False), ("rules", True)]


def test_a_first_load_that_raises_anything_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: []\n", encoding="utf-8")

    def load() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(MonitorError, match=r"feeds\.yaml: cannot be loaded \(RecursionError"):
        Watched("feeds", (path,), load)


def test_a_rule_file_nested_too_deeply_keeps_the_running_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    (rules / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    asia = rules / "alerts" / "asia.yaml"
    asia.write_text("rules:\n  - id: strait\n    title: Strait\n    query: strait\n", "utf-8")
    service = Service(rules, tmp_path / "monitor.db")
    try:
        service.wait_for("monitor running")
        (rules / "alerts" / "deep.yaml").write_text(
            "rules: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8"
        )
        refused = service.wait_for("keeping the last good rules")
        metrics = service.metrics()
    finally:
        assert service.stop() == 0
    assert "deep.yaml" in refused
    assert metrics['monitor_reload_errors_total{config="rules"}'] == 1
    assert metrics["monitor_rules"] == 1
    assert not any("Traceback" in line for line in service.seen), "\n".join(service.seen)


def test_progress_calls_a_service_stuck_only_past_a_feeds_longest_honest_run() -> None:
    now = [1000.0]
    progress = Progress(tick=15, slow_after=60, clock=lambda: now[0])
    progress.cycle_started()
    now[0] += 15 + 60 + 45  # a tick, the fetch's total timeout, three ticks: still honest
    assert progress.stuck(longest_feed=60) is None
    now[0] += 1
    assert "no poll cycle has completed for 121 s (one was due 106 s ago)" in str(
        progress.stuck(longest_feed=60)
    )
    progress.feed_done()  # a feed finished: the cycle is alive after all
    assert progress.stuck(longest_feed=60) is None
    assert progress.report_due() is not None  # running 121 s, past the 60 s to report
    assert progress.report_due() is None  # said once; again only 60 s later


def test_scheduler_noise_is_dropped_and_the_rest_kept() -> None:
    noise = SchedulerNoise()

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("apscheduler.scheduler", logging.WARNING, "", 0, msg, (), None)

    skipped = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
    assert not noise.filter(record(skipped))
    assert not noise.filter(record('Run time of job "%s" was missed by %s'))
    assert noise.filter(record("Scheduler started"))


def test_missed_runs_are_said_in_the_users_terms() -> None:
    due = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    later = due.replace(hour=9, minute=30)
    assert missed("route:tokyo-morning", due, later) == (
        "route tokyo-morning: the send due at 2026-12-02 07:00 UTC was missed by 9000 s (the "
        "service was blocked all that time); its matches go out with the next one"
    )
    late = due.replace(second=3)
    assert (
        missed("poll", due, late) == "the service was blocked for 3.0 s: a poll check was skipped"
    )


def test_scheduler_events_become_lines_for_the_user() -> None:
    now = [0.0]
    progress = Progress(tick=15, slow_after=60, clock=lambda: now[0])
    due = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    still = JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "poll", "default", [due])
    assert translate(still, progress, due) is None  # no cycle running: nothing to say
    progress.cycle_started()
    now[0] = 75.0
    level, text = translate(still, progress, due) or (0, "")
    assert level == logging.WARNING
    assert text.startswith("poll cycle still running after 75 s (0 feeds done so far)")
    late = JobExecutionEvent(EVENT_JOB_MISSED, "route:tokyo", "default", due)
    assert translate(late, progress, due.replace(hour=8)) == (
        logging.WARNING, missed("route:tokyo", due, due.replace(hour=8))
    )  # fmt: skip

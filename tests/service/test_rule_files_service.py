"""`monitor run` with odd things under rules/: a FIFO among the rule files (it used to hang the
service on start) is skipped with a warning naming it; a rule file nested too deep is refused
with its file:line and the last good rules stay in force."""

from __future__ import annotations

import os
from pathlib import Path

from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve
from tests.support.service import RunningService

RULE = "rules:\n  - {id: strait, query: '\"Taiwan Strait\"'}\n"


def test_a_fifo_among_the_rule_files_is_skipped_and_the_service_runs(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    (rules / "alerts" / "asia.yaml").write_text(RULE, encoding="utf-8")
    os.mkfifo(rules / "alerts" / "x.yaml")  # no writer: opening it to read would block
    with FeedServer() as server:
        url = server.add("/wire.xml", serve(TWO))
        (rules / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n", encoding="utf-8")
        service = RunningService(rules, tmp_path / "monitor.db")
        try:
            warning = service.wait_for("x.yaml: skipped: not a regular file", advance=False)
            assert str(rules / "alerts" / "x.yaml") in warning and "WARNING" in warning
            service.wait_for("poll cycle: 1 feeds (1 ok")
            assert service.get("/healthz")[0] == 200

            deep = "rules:\n  - id: strait\n    query: x\n    labels: " + "[" * 300 + "]" * 300
            (rules / "alerts" / "asia.yaml").write_text(deep + "\n", encoding="utf-8")
            refused = service.wait_for("keeping the last good rules")
            assert f"{rules / 'alerts' / 'asia.yaml'}:4:" in refused
            assert "nested deeper than 50 levels" in refused
        finally:
            code = service.stop()
    assert code == 0
    assert not any("Traceback" in line or "RecursionError" in line for line in service.seen)

"""The /healthz database probe must never cost the service its SQLite locks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.service.test_instances_service import FeedServer, RunningService, rules_with_feeds


def test_a_health_check_then_another_reader_leaves_the_wal_in_place(tmp_path: Path) -> None:
    # Closing any descriptor of a file drops all of this process's POSIX locks on it; a probe
    # that opened and closed monitor.db let the next reader's close believe it was the last
    # one, checkpoint and delete the WAL the running service was still writing to.
    with FeedServer() as server:
        rules = rules_with_feeds(tmp_path / "rules", server, 2)
        db = tmp_path / "state" / "monitor.db"
        service = RunningService(rules, db)
        try:
            service.wait_for("poll cycle: 2 feeds")
            service.get("/healthz")
            reader = sqlite3.connect(db)
            reader.execute("SELECT count(*) FROM feeds").fetchall()
            reader.close()
            assert (db.parent / "monitor.db-wal").exists(), "the WAL was deleted under the service"
        finally:
            service.stop()

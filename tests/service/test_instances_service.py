"""`monitor run` as one instance among several: its id in /healthz and /metrics, its entry in
`monitor status` while it runs and gone after a clean stop (both backends), and two services
on one PostgreSQL database sharing a feed farm without polling any feed twice."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli.main import main
from monitor.store import Store
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve
from tests.support.service import WAIT, RunningService


def rules_with_feeds(folder: Path, server: FeedServer, count: int) -> Path:
    (folder / "alerts").mkdir(parents=True)
    lines = ["feeds:"] + [
        f"  - url: {server.add(f'/f{n}.xml', serve(TWO))}\n    id: f{n}\n    interval: 10m"
        for n in range(count)
    ]
    (folder / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def status(rules: Path, db: str | Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--rules", str(rules), "--db", str(db), "status", "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def samples(text: str) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            found[f"{s.name}{{{labels}}}"] = s.value
    return found


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_the_instance_says_who_it_is_and_signs_off_on_a_clean_stop(
    tmp_path: Path, db_target: str | Path
) -> None:
    backend = "sqlite" if isinstance(db_target, Path) else "postgresql"
    with FeedServer() as server:
        rules = rules_with_feeds(tmp_path / "rules", server, 2)
        service = RunningService(rules, db_target, env={"MONITOR_INSTANCE": "desk-7"})
        try:
            service.wait_for("poll cycle: 2 feeds")
            [me] = status(rules, db_target)["instances"]
            assert (me["id"], me["pid"], me["host"]) == (
                "desk-7", service.proc.pid, socket.gethostname(),
            )  # fmt: skip
            # It beats: its `seen` moves on while it runs.
            eventually(
                lambda: status(rules, db_target)["instances"][0]["seen"] != me["seen"],
                "the instance beat again",
            )
            metrics = samples(service.get("/metrics")[1])
            assert metrics[f'monitor_instance_info{{backend="{backend}",instance="desk-7"}}'] == 1
            assert metrics['monitor_polls_total{instance="desk-7",outcome="ok"}'] == 2
            held = 'monitor_feeds_held{instance="desk-7"}'
            assert held in metrics
            # Released once stored: the gauge says so at the next beat.
            eventually(lambda: samples(service.get("/metrics")[1])[held] == 0, "no feed held")
            code, body = service.get("/healthz")
            assert code == 200, body
            health = json.loads(body)
            assert (health["instance"], health["pid"], health["feeds"]) == (
                "desk-7", service.proc.pid, 2,
            )  # fmt: skip
        finally:
            assert service.stop() == 0
    assert status(rules, db_target)["instances"] == []


def test_without_a_name_the_instance_is_its_host_and_pid(tmp_path: Path) -> None:
    with FeedServer() as server:
        rules = rules_with_feeds(tmp_path / "rules", server, 1)
        service = RunningService(rules, tmp_path / "monitor.db", env={"MONITOR_INSTANCE": ""})
        try:
            body = service.get("/healthz")[1]
        finally:
            service.stop()
    assert json.loads(body)["instance"] == f"{socket.gethostname()}-{service.proc.pid}"


def make_due(db: str) -> dict[str, datetime | None]:
    """Every feed due now, as if its interval had passed; their last attempts before that."""
    with Store(db) as store:
        states = list(store.states().values())
        for state in states:
            store.save_state(dataclasses.replace(state, next_due=datetime.now(UTC)))
    return {s.feed_id: s.last_attempt for s in states}


def polled_since(db: str, before: dict[str, datetime | None]) -> bool:
    with Store(db) as store:
        now = {s.feed_id: s.last_attempt for s in store.states().values()}
    return all(now[feed] is not None and now[feed] != last for feed, last in before.items())


def test_two_services_on_one_postgresql_poll_each_feed_once_per_cycle(
    tmp_path: Path, pg_url: str
) -> None:
    count = 7  # below the 8 from which a service starts parse workers: two services stay light
    with FeedServer() as server:
        rules = rules_with_feeds(tmp_path / "one", server, count)
        other = rules_with_feeds(tmp_path / "two", server, count)
        services = [
            RunningService(folder, pg_url, env={"MONITOR_INSTANCE": name})
            for folder, name in ((rules, "one"), (other, "two"))
        ]
        try:
            paths = [f"/f{n}.xml" for n in range(count)]
            eventually(lambda: all(server.requests_to(p) for p in paths), "every feed polled")
            eventually(lambda: len(status(rules, pg_url)["feeds"]) == count, "states stored")
            eventually(
                lambda: all(f["last_attempt"] for f in status(rules, pg_url)["feeds"]),
                "every poll stored",
            )
            before = make_due(pg_url)  # the second cycle
            eventually(lambda: polled_since(pg_url, before), "every feed polled again")
            live = {i["id"] for i in status(rules, pg_url)["instances"]}
            assert live == {"one", "two"}
        finally:
            codes = [s.stop() for s in services]
    assert codes == [0, 0]
    assert {p: len(server.requests_to(p)) for p in paths} == dict.fromkeys(paths, 2)

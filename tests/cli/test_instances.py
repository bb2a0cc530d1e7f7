"""What the commands say about the instances on a database, on both backends: `monitor poll`
leaves out (and names) a feed a running service is polling, and `monitor status` lists the
live instances and the feeds each holds, in text and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main
from monitor.store import Store
from monitor.store.cluster import Instance, Instances, Leases
from tests.ingest.test_poll import TWO
from tests.support.feedserver import FeedServer, serve


@pytest.fixture
def setup(tmp_path: Path, db_target: str | Path) -> Iterator[tuple[FeedServer, Path, str]]:
    rules = tmp_path / "rules"
    (rules / "alerts").mkdir(parents=True)
    with FeedServer() as server:
        lines = ["feeds:"] + [
            f"  - url: {server.add(f'/{name}.xml', serve(TWO))}\n    id: {name}"
            for name in ("wire", "courier", "tokyo")
        ]
        (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        yield server, rules, str(db_target)


def run(rules: Path, db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--rules", str(rules), "--db", db, *args])


def register(db: str, name: str, *held: str, seen_ago: float = 0) -> None:
    """An instance as `monitor run` registers it, holding these feeds now."""
    now = datetime.now(UTC)
    seen = now - timedelta(seconds=seen_ago)
    me = Instance(name, "box-1", 4242, seen - timedelta(hours=2), seen, "9.9")
    with Store(db) as store:
        Instances(store).register(me, seen + timedelta(seconds=45), now - timedelta(days=1))
        Leases(store, name).claim(held, now, now + timedelta(minutes=5))


def test_poll_leaves_out_a_feed_a_service_is_polling_and_says_so(
    setup: tuple[FeedServer, Path, str],
) -> None:
    server, rules, db = setup
    run(rules, db, "status")  # creates the database
    register(db, "replica-1", "courier")
    result = run(rules, db, "poll")
    assert result.exit_code == 0, result.output
    assert "polled 2 feeds" in result.output
    assert "  - courier: left out, instance replica-1 is polling it right now" in result.output
    assert len(server.requests_to("/courier.xml")) == 0
    assert len(server.requests_to("/wire.xml")) == 1


def test_status_lists_live_instances_and_what_each_holds(
    setup: tuple[FeedServer, Path, str],
) -> None:
    _, rules, db = setup
    empty = run(rules, db, "status")
    assert "instances: no monitor run is live on this database" in empty.output
    assert json.loads(run(rules, db, "status", "--json").output)["instances"] == []
    register(db, "replica-1", "courier", "wire")
    register(db, "replica-2")
    register(db, "replica-3", "tokyo", seen_ago=60)  # stopped beating: dead, not listed

    text = run(rules, db, "status")
    assert text.exit_code == 0, text.output
    assert "instances: 2 live" in text.output
    assert "  replica-1: pid 4242 on box-1, monitor 9.9, up 2h00m, seen " in text.output
    assert "polling 2 feeds now (courier, wire)" in text.output
    assert "  replica-2: pid 4242 on box-1" in text.output
    assert "polling no feed now" in text.output
    assert "replica-3" not in text.output

    doc = json.loads(run(rules, db, "status", "--json").output)
    assert [(i["id"], i["host"], i["pid"], i["feeds_held"]) for i in doc["instances"]] == [
        ("replica-1", "box-1", 4242, ["courier", "wire"]),
        ("replica-2", "box-1", 4242, []),
    ]
    one = doc["instances"][0]
    seen = datetime.fromisoformat(one["seen"])
    assert datetime.fromisoformat(one["started"]) == seen - timedelta(hours=2)
    assert abs((datetime.now(UTC) - seen).total_seconds()) < 60

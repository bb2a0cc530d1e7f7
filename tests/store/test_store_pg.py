"""The store on a real PostgreSQL server: the counterparts of test_store.py's tests about the
SQLite file (opening, migrating, a second writer, a reader during a write), where the point
exists on PostgreSQL. Every other store test runs on both backends (`db_target`)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from monitor.errors import StoreError
from monitor.match.rule import Hit, Match
from monitor.models import Rendered, StoreResult
from monitor.store import Store
from monitor.store.details import item_detail
from monitor.store.outbox import Claims, Outbox
from monitor.store.pg import CONNECT_TIMEOUT, WRITE_LOCK
from monitor.store.routes import RouteHealth
from monitor.store.schema import MIGRATION_NAMES
from tests.store.test_store import T0, make_item, state


def migrations(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM monitor_migrations ORDER BY name")]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nobody listens there


def test_an_unreachable_server_is_one_line_naming_the_url_without_its_password() -> None:
    port = unused_port()
    url = f"postgresql://desk:hunter2@127.0.0.1:{port}/monitor"
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message
    assert f"postgresql://desk:***@127.0.0.1:{port}/monitor" in message
    assert "refused" in message  # the reason, not the pool's timeout
    assert "check that the PostgreSQL server" in message  # the hint
    assert time.monotonic() - started < CONNECT_TIMEOUT  # said at once, not after retries


def test_opening_twice_applies_nothing_twice(pg_url: str) -> None:
    Store(pg_url).close()
    Store(pg_url).close()
    assert migrations(pg_url) == sorted(MIGRATION_NAMES)  # the same names as on SQLite, once


def test_a_database_from_a_newer_monitor_is_refused(pg_url: str) -> None:
    Store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO monitor_migrations (name, applied_at)"
            " VALUES ('m999_from_the_future', '2030-01-01')"
        )
    with pytest.raises(StoreError, match=r"newer monitor.*m999_from_the_future.*upgrade"):
        Store(pg_url)


OPEN_AT_ONCE = """\
import pathlib, sys, time
from monitor.store import Store
go, deadline = pathlib.Path(sys.argv[2]), time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
Store(sys.argv[1]).close()
"""


def test_processes_opening_a_new_database_at_once_all_succeed(pg_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(OPEN_AT_ONCE), pg_url, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    go.touch()  # all of them start migrating the empty database now
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    assert migrations(pg_url) == sorted(MIGRATION_NAMES)


def test_a_second_writer_waits_for_the_first(pg_url: str) -> None:
    with Store(pg_url) as store, psycopg.connect(pg_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # another instance
        results: list[StoreResult] = []
        waiting = threading.Thread(
            target=lambda: results.append(store.save_items("asia", [make_item("a", "A")], state()))
        )
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and results == []  # waiting, not failed at once
        holder.commit()
        waiting.join(10)
        assert results == [StoreResult(new=1)]


def test_a_reader_is_not_blocked_by_an_open_write(pg_url: str) -> None:
    with Store(pg_url) as store, psycopg.connect(pg_url) as writer:
        store.save_state(state(etag="before"))
        writer.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        writer.execute("UPDATE feeds SET etag = 'during'")
        started = time.monotonic()
        assert store.get_state("asia") == state(etag="before")
        assert store.count_items() == 0 and time.monotonic() - started < 1.0
        writer.commit()
        assert store.get_state("asia") == state(etag="during")


@pytest.fixture
def en_us_url(pg_url: str) -> str:
    """A database that sorts text as English does (ICU en-US), as many servers are set up:
    `abc` before `Zed`, `dprk_b` before `dprk-a`; SQLite sorts by code point."""
    parts = urlsplit(pg_url)
    name = parts.path.lstrip("/") + "_en"
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu'
            " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    return urlunsplit(parts._replace(path=f"/{name}"))


RULES = ["dprk_b", "dprk-a", "Zed", "abc"]
CODE_ORDER = sorted(RULES)  # as SQLite orders them: ["Zed", "abc", "dprk-a", "dprk_b"]


def test_orders_users_see_are_code_point_order_whatever_the_collation(en_us_url: str) -> None:
    with Store(en_us_url) as store:
        assert store._rows("SELECT 'abc' < 'Zed' AS english")[0]["english"]  # the point
        hit = (Hit("drills", "title", 0, 6),)
        matches = [Match(rule, 1.0, hit) for rule in RULES]
        store.save_items("asia", [make_item("a", "drills")], state(), lambda i: (i, matches))
        [item] = store.get_items([1])
        assert store.matched_rules([item.id]) == {item.id: CODE_ORDER}
        detail = item_detail(store, item.id)
        assert detail is not None and [m.rule_id for m in detail.matches] == CODE_ORDER
        pending = Outbox(store).pending("desk", T0 - timedelta(days=365 * 100))
        assert [m.rule_id for m in pending] == CODE_ORDER
        health = RouteHealth(store)
        for route in RULES:
            health.failed(route, "broken", T0, T0 + timedelta(minutes=1))
        assert [t.route_id for t in health.troubled()] == CODE_ORDER
        outbox = Outbox(store)  # digests frozen in one round, told apart by their ids
        for route in RULES:
            body = Rendered(route, "email", b"", "s", "text/plain")
            assert outbox.freeze(body, route, "me", Claims(), T0)
        assert [d.id for d in outbox.due(T0)] == CODE_ORDER
        assert [d.id for d in outbox.recent(["pending"], limit=2)] == CODE_ORDER[:2]

"""Fixtures for the console's tests: the demo's database (made once per session by the real
pipeline: bundled feeds served on loopback, polled, linked, delivered) and a client on a copy.

`client` drives the Starlette app in-process (no socket); the browser tests in
tests/web/browser/ start `monitor run` as a real subprocess instead.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from monitor.demo.demo import run_demo
from monitor.web.app import create_app
from monitor.web.config import WebConfig

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoState:
    db: Path
    rules: Path


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> DemoState:
    out = tmp_path_factory.mktemp("console-demo")
    run_demo(out, REPO / "rules", echo=lambda _line: None)
    db = out / "demo.db"
    with sqlite3.connect(db) as conn:  # fold the WAL in, so a plain file copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return DemoState(db=db, rules=out / "demo" / "rules")


@pytest.fixture
def console_state(demo_state: DemoState, tmp_path: Path) -> DemoState:
    """A copy of the demo's database and rules a test may change."""
    db = tmp_path / "console.db"
    shutil.copyfile(demo_state.db, db)
    rules = tmp_path / "rules"
    shutil.copytree(demo_state.rules, rules)
    return DemoState(db=db, rules=rules)


def make_client(state: DemoState, token: str | None = None, host: str = "127.0.0.1") -> TestClient:
    config = WebConfig(db_path=state.db, rules_dir=state.rules, host=host, token=token)
    return TestClient(create_app(config), base_url="http://127.0.0.1")


@pytest.fixture
def client(console_state: DemoState) -> Iterator[TestClient]:
    with make_client(console_state) as test_client:
        yield test_client


def csrf_of(client: TestClient) -> str:
    """The CSRF token the console gave this client (a GET sets the cookie first)."""
    if "monitor_csrf" not in client.cookies:
        client.get("/login")
    token = client.cookies.get("monitor_csrf")
    assert token, "the console set no CSRF cookie"
    return token

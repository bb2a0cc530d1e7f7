"""Fixtures for the console's tests: the demo's database (made once per session by the real
pipeline: bundled feeds served on loopback, polled, linked, delivered) and a client on a copy.

`client` drives the Starlette app in-process (no socket); the browser tests in
tests/web/browser/ start `monitor run` as a real subprocess instead.

A test marked `@on_both` runs twice: on a copy of the demo's SQLite file, then on a
PostgreSQL database holding the same rows (`pgdemo`: the same ids, so the pages must agree).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from starlette.testclient import TestClient

from monitor.demo.demo import run_demo
from monitor.store.location import DbLocation
from monitor.web.app import create_app
from monitor.web.config import WebConfig
from tests.web.pgdemo import copy_into_pg

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoState:
    db: Path | str  # a SQLite file or a PostgreSQL URL
    rules: Path


BACKENDS = ["sqlite", "postgresql"]
# Run a test that takes `client` or `console_state` on both backends.
on_both = pytest.mark.parametrize("console_backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> DemoState:
    out = tmp_path_factory.mktemp("console-demo")
    run_demo(out, REPO / "rules", echo=lambda _line: None)
    db = out / "demo.db"
    with sqlite3.connect(db) as conn:  # fold the WAL in, so a plain file copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return DemoState(db=db, rules=out / "demo" / "rules")


@pytest.fixture(scope="session")
def pg_demo(demo_state: DemoState, pg_server: Callable[[str], str]) -> Callable[[], str]:
    """Makes a new PostgreSQL database holding the demo's rows; returns its URL. The copy is
    made once; each test's database is made from it as a template (a file copy: fast)."""
    template = pg_server(f"demo{os.getpid()}")
    copy_into_pg(Path(demo_state.db), template)
    admin = pg_server(f"demoadmin{os.getpid()}")  # templates are copied from elsewhere
    names = itertools.count(1)

    def make() -> str:
        name = f"{urlsplit(template).path.strip('/')}_{next(names)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{urlsplit(template).path[1:]}"')
        return urlunsplit(urlsplit(template)._replace(path="/" + name))

    return make


@pytest.fixture
def console_backend(request: pytest.FixtureRequest) -> str:
    """`sqlite` unless a test asks for both (`on_both`)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def console_state(
    demo_state: DemoState, tmp_path: Path, console_backend: str, request: pytest.FixtureRequest
) -> DemoState:
    """A copy of the demo's database and rules a test may change."""
    rules = tmp_path / "rules"
    shutil.copytree(demo_state.rules, rules)
    if console_backend == "postgresql":
        return DemoState(db=request.getfixturevalue("pg_demo")(), rules=rules)
    db = tmp_path / "console.db"
    shutil.copyfile(demo_state.db, db)
    return DemoState(db=db, rules=rules)


def make_client(state: DemoState, token: str | None = None, host: str = "127.0.0.1") -> TestClient:
    config = WebConfig(db=DbLocation(state.db), rules_dir=state.rules, host=host, token=token)
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

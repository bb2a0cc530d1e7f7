"""Fixtures most ingest tests share: a misbehaving-on-demand feed server on loopback and a
store on a fresh SQLite file, then on a fresh PostgreSQL database (`db_target`): each test that
takes `store` runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import Store
from tests.support.feedserver import FeedServer


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def store(db_target: Path | str) -> Iterator[Store]:
    with Store(db_target) as db:
        yield db

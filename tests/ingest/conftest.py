"""Fixtures most ingest tests share: a misbehaving-on-demand feed server on loopback, a store
on a fresh SQLite file, then on a fresh PostgreSQL database (`db_target`): each test that takes
`store` runs on both; and the rule set `monitor demo` and `monitor init` ship."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.match.ruleset import RuleSet, load_ruleset
from monitor.store import Store
from tests.support.feedserver import FeedServer


@pytest.fixture(scope="session")
def shipped_rules() -> RuleSet:
    return load_ruleset(Path(__file__).parents[2] / "monitor" / "data" / "rules")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def store(db_target: Path | str) -> Iterator[Store]:
    with Store(db_target) as db:
        yield db

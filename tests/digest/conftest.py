"""The `world` fixture of the delivery tests: see world.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.digest.world import World, make_world


@pytest.fixture
def world(tmp_path: Path, db_target: Path | str) -> Iterator[World]:
    """Once on a SQLite file, once on a PostgreSQL database."""
    with make_world(tmp_path, db_target) as made:
        yield made

"""Pieces shared by the command modules: paths from the global options, store opening."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from monitor.ingest.feeds import parse_duration
from monitor.ingest.poll import utcnow
from monitor.store import Store


@dataclass(frozen=True)
class Paths:
    rules: Path
    db: Path

    @property
    def feeds(self) -> Path:
        return self.rules / "feeds.yaml"


pass_paths = click.make_pass_decorator(Paths)


@contextmanager
def open_store(paths: Paths) -> Iterator[Store]:
    store = Store(paths.db)
    try:
        yield store
    finally:
        store.close()


def parse_since(text: str | None) -> datetime | None:
    """`--since 2d` means items first seen in the last two days."""
    return None if text is None else utcnow() - parse_duration(text)

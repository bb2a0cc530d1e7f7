"""Pieces shared by the command modules: paths from the global options, store opening."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def parse_tz(text: str) -> tzinfo | None:
    """`--tz Asia/Tokyo`, `--tz UTC`, or `local` (None: this machine's zone, `TZ`)."""
    if text.strip().lower() == "local":
        return None
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {text!r}: give an IANA name such as Asia/Tokyo, UTC, or local",
            param_hint="--tz",
        ) from None


# Times are shown in the reader's zone and always with it: a bare "08:00" from a UTC store
# read as local time is how an alert gets missed by a few hours.
tz_option = click.option(
    "--tz",
    "tz_name",
    default="local",
    show_default=True,
    help="Time zone of the times shown: an IANA name (Asia/Tokyo), UTC, or local.",
)


def parse_since(text: str | None) -> datetime | None:
    """`--since 2d` means items first seen in the last two days."""
    return None if text is None else utcnow() - parse_duration(text)

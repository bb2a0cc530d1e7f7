"""Pieces shared by the command modules: paths from the global options (the database as a
file or a PostgreSQL URL), store opening.

The command modules are imported to list them in `monitor --help`, so at their top they import
only click and light modules; the database, the network, YAML and the matching engine are
imported inside the commands that use them (tests/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from monitor.store.location import DbLocation, url_problem
from monitor.yamlfile.duration import parse_duration

if TYPE_CHECKING:
    from monitor.store import Store


@dataclass(frozen=True)
class Paths:
    rules: Path
    db: DbLocation  # a SQLite file or a PostgreSQL URL; prints without its password

    @property
    def feeds(self) -> Path:
        return self.rules / "feeds.yaml"


pass_paths = click.make_pass_decorator(Paths)


class DbLocationType(click.ParamType[DbLocation, object]):
    """`--db`: a file path keeps SQLite, a `postgresql://` (or `postgres://`) URL selects
    PostgreSQL. Anything else that looks like a URL is refused here, before it could become
    a file named `mysql:/...` in the working directory."""

    name = "PATH|URL"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> DbLocation:
        if isinstance(value, DbLocation):
            return value
        text = str(value).strip()
        if not text:
            self.fail("give a SQLite file path or a postgresql:// URL", param, ctx)
        location = DbLocation.parse(text)
        if location.is_postgres:
            problem = url_problem(text)
            if problem is not None:
                self.fail(
                    f"not a PostgreSQL URL: {problem}; write postgresql://user@host:port/name",
                    param,
                    ctx,
                )
            return location
        if "://" in text:
            scheme = text.split("://", 1)[0]
            self.fail(
                f"{scheme}:// is not a database monitor speaks: "
                "give a SQLite file path or a postgresql:// URL",
                param,
                ctx,
            )
        if location.file is not None and location.file.is_dir():
            self.fail(f"{text} is a folder: give the database file inside it", param, ctx)
        return location


DB_LOCATION = DbLocationType()


def utcnow() -> datetime:
    """The poll stage's clock, without importing the poll stage (httpx, the parsers)."""
    return datetime.now(UTC)


@contextmanager
def open_store(paths: Paths) -> Iterator[Store]:
    from monitor.store import Store

    store = Store(paths.db.target)
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
    if text is None:
        return None
    try:
        return utcnow() - parse_duration(text)
    except ValueError as error:  # a usage error on one line, not a traceback
        raise click.BadParameter(str(error), param_hint="--since") from None
